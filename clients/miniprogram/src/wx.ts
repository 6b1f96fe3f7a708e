/**
 * The slice of the mini-program platform the SDK uses. The SDK talks to the platform only
 * through an object of this shape (the global `wx` by default), so tests can hand it a shim.
 */

export interface SocketCallbacks {
  success?: (res: { errMsg: string }) => void;
  fail?: (res: { errMsg: string }) => void;
  complete?: (res: { errMsg: string }) => void;
}

export interface ConnectSocketOptions extends SocketCallbacks {
  url: string;
  header?: Record<string, string>;
  protocols?: string[];
  tcpNoDelay?: boolean;
  perMessageDeflate?: boolean;
  /** ms before the connection attempt is given up (base library 2.10.0). */
  timeout?: number;
}

export interface SocketTask {
  send(options: { data: string | ArrayBuffer } & SocketCallbacks): void;
  close(options: { code?: number; reason?: string } & SocketCallbacks): void;
  onOpen(cb: (res: { header?: Record<string, string> }) => void): void;
  onMessage(cb: (res: { data: string | ArrayBuffer }) => void): void;
  onClose(cb: (res: { code: number; reason: string }) => void): void;
  onError(cb: (res: { errMsg: string }) => void): void;
}

export interface NetworkStatus {
  isConnected: boolean;
  networkType: string;
}

/**
 * `connectSocket`, and the app lifecycle events the SDK follows when the platform has them
 * (they are optional so a plain socket provider still works): going to the background,
 * coming back, and network changes. The `off*` forms let a closed room stop listening.
 */
export interface WxLike {
  connectSocket(options: ConnectSocketOptions): SocketTask;
  onAppHide?(cb: () => void): void;
  offAppHide?(cb: () => void): void;
  onAppShow?(cb: () => void): void;
  offAppShow?(cb: () => void): void;
  onNetworkStatusChange?(cb: (res: NetworkStatus) => void): void;
  offNetworkStatusChange?(cb: (res: NetworkStatus) => void): void;
}

declare const wx: WxLike | undefined;

/** The global `wx` of the mini-program runtime; a clear error anywhere else. */
export function globalWx(): WxLike {
  if (typeof wx === "undefined" || wx === undefined) {
    throw new Error("no global wx: pass createRoom({wx}) outside a mini-program");
  }
  return wx;
}
