// @ts-check
/**
 * Split pasted or file text into container IDs: any run of whitespace, commas
 * or semicolons separates them. Duplicates are kept (the service de-duplicates).
 * @param {string} text
 * @returns {string[]}
 */
export function parseCids(text) {
  return text.split(/[\s,;]+/).filter(Boolean);
}
