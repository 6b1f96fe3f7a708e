// Money typed by people: yuan as a decimal string, turned into whole fen without floats.

export const MAX_YUAN_DIGITS = 9; // 999,999,999 yuan: far past every limit the API sets

/** "12.34" → 1234 fen; null with a reason key when the text is not an amount.
 * The string is parsed digit by digit: 0.1 + 0.2 never enters the sum. */
export function parseYuan(text) {
  const value = String(text ?? '').trim().replace(/^¥/, '');
  if (value === '') return { fen: null, reason: 'money.empty' };
  const found = /^(\d+)(?:\.(\d*))?$/.exec(value);
  if (!found) return { fen: null, reason: 'money.format' };
  const [, whole, fraction = ''] = found;
  if (fraction.length > 2) return { fen: null, reason: 'money.decimals' };
  const digits = whole.replace(/^0+(?=\d)/, '');
  if (digits.length > MAX_YUAN_DIGITS) return { fen: null, reason: 'money.large' };
  const fen = Number(digits) * 100 + Number(fraction.padEnd(2, '0'));
  if (fen <= 0) return { fen: null, reason: 'money.zero' };
  return { fen, reason: null };
}

/** The UTF-8 length of a string: WeChat Pay counts bytes, not characters. */
export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}
