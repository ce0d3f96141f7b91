/* global document */
/**
 * Marking search terms in text, as the service matches them (docs/search.md): words split at
 * white space, `"quoted phrases"` kept whole, any case. Returns DOM nodes (text and <mark>),
 * never HTML.
 */

/** The terms of a search text, as the API reads `q`. */
function searchTerms(q) {
  const terms = [];
  for (const match of q.matchAll(/"([^"]*)"?|[^\s"]+/g)) {
    const term = (match[1] ?? match[0]).trim();
    if (term !== '' && !terms.includes(term)) terms.push(term);
  }
  return terms;
}

/** `text` as nodes, every occurrence of a term (any case) in a <mark>. */
function highlighted(text, terms) {
  const lower = text.toLowerCase();
  const wanted = terms.map((t) => t.toLowerCase()).filter((t) => t !== '');
  const nodes = [];
  let at = 0;
  while (at < text.length) {
    let best = -1;
    let length = 0;
    for (const term of wanted) {
      const i = lower.indexOf(term, at);
      if (i >= 0 && (best < 0 || i < best || (i === best && term.length > length))) {
        best = i;
        length = term.length;
      }
    }
    if (best < 0) break;
    if (best > at) nodes.push(document.createTextNode(text.slice(at, best)));
    const mark = document.createElement('mark');
    mark.textContent = text.slice(best, best + length);
    nodes.push(mark);
    at = best + length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

export { highlighted, searchTerms };
