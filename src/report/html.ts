/**
 * Text into HTML. Reports are made from run directories people send each
 * other, so every string that comes from a run file (names, settings, notes,
 * paths) goes through `escapeHtml` before it reaches the page: as element
 * text and as a quoted attribute value alike.
 */

const ENTITIES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;'};

export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, c => ENTITIES[c]);
}
