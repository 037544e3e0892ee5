/** Small DOM helpers: elements are built with textContent only, never innerHTML (no injection). */
export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) {
    throw new Error(`missing #${id}`);
  }
  return el;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== undefined) {
      el.append(c);
    }
  }
  return el;
}

export function button(label: string, onClick: () => void, attrs: Record<string, string> = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', onClick);
  return b;
}

/** The status line at the top of the page. */
export function say(text: string, kind: 'ok' | 'error' | '' = ''): void {
  const el = $('message');
  el.textContent = text;
  el.className = kind;
}

export function clear(el: HTMLElement): HTMLElement {
  el.textContent = '';
  return el;
}

export function short(version: string | undefined): string {
  return version === undefined ? '' : version.slice(0, 12);
}
