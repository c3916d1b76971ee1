// Small DOM builders. Text always goes in through textContent, never
// innerHTML: every string on this page comes from the network.

/**
 * el creates an element. attrs sets attributes (class, data-*, title...);
 * children are nodes or strings (strings become text nodes).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** byId returns the element with that id or throws: ids are the page's contract. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node;
}

/** setText sets an element's text only when it changed (fewer layouts). */
export function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

/** statusOf normalises a status string to ONLINE, OFFLINE or UNKNOWN. */
export function statusOf(v) {
  const s = typeof v === 'string' ? v.toUpperCase() : '';
  return s === 'ONLINE' || s === 'OFFLINE' ? s : 'UNKNOWN';
}

/** pill builds a status pill. */
export function pill(status) {
  return el('span', { class: 'pill', 'data-status': status }, status);
}
