// Building DOM without innerHTML: every string from the server lands as text, never markup.
import { t } from './i18n.js';

function setI18n(el, key, attr, args) {
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  if (attr === 'text') {
    el.dataset.i18n = key;
    el.textContent = t(key, args);
  } else {
    el.dataset[`i18n${attr[0].toUpperCase()}${attr.slice(1)}`] = key;
    el.setAttribute(attr === 'label' ? 'aria-label' : attr, t(key, args));
  }
}

/** An element: props are attributes, `on*` listeners, `text`, or i18n keys
 * (`i18n` for the text, `i18nLabel`, `i18nPlaceholder`, `i18nTitle`, with `args`). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const args = props.args;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false || key === 'args') continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'i18n') setI18n(el, value, 'text', args);
    else if (key === 'i18nLabel') setI18n(el, value, 'label', args);
    else if (key === 'i18nPlaceholder') setI18n(el, value, 'placeholder', args);
    else if (key === 'i18nTitle') setI18n(el, value, 'title', args);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === 'value') el.value = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Re-translate every element marked with i18n keys under `root`. */
export function retranslate(root = document) {
  const argsOf = (el) => (el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined);
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n, argsOf(el));
  for (const el of root.querySelectorAll('[data-i18n-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nLabel, argsOf(el)));
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder, argsOf(el)));
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) {
    el.setAttribute('title', t(el.dataset.i18nTitle, argsOf(el)));
  }
}

/** A labelled form control: the label names the control for assistive technology. */
export function field(labelKey, control, extraClass = '') {
  return h('label', { class: `field ${extraClass}`.trim() }, h('span', { i18n: labelKey }), control);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Run `job` now and then `ms` after each run ends, until the returned stop is called. */
export function every(ms, job) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try {
      await job();
    } finally {
      if (!stopped) timer = setTimeout(run, ms);
    }
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export function panel(id, titleKey, ...children) {
  return h(
    'section',
    { class: 'card panel', id, 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title`, i18n: titleKey }),
    ...children,
  );
}

/** Replace `el`'s children; null and false leave no trace (Element.append would print them). */
export function fill(el, ...children) {
  clear(el).append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}
