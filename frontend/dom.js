// @ts-check
/**
 * The two DOM helpers every painting module uses.
 * @module dom
 */

/**
 * The element with this id; the page's markup guarantees it exists.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/**
 * Set an element's text only when it changed. Painting runs every frame, and
 * rewriting the data of the existing text node (instead of `textContent`, which
 * replaces the node) keeps unchanged frames free of layout work.
 * @param {HTMLElement} e
 * @param {string} text
 */
export function setText(e, text) {
  const node = e.firstChild;
  if (node && node.nodeType === Node.TEXT_NODE && !node.nextSibling) {
    const t = /** @type {Text} */ (node);
    if (t.data !== text) t.data = text;
  } else if (e.textContent !== text) {
    e.textContent = text;
  }
}
