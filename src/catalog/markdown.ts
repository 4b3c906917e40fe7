import { Marked, type Tokens } from 'marked';
import { escapeHtml, raw, type SafeHtml } from '../http/html.js';

/**
 * Markdown of our own content packages → HTML. The checker already refuses raw HTML and headings; the
 * renderer still escapes them so that a package imported by mistake cannot inject markup, and it keeps
 * links safe for a page shown inside the LMS iframe (new tab, announced, no referrer, no script URLs).
 */
const marked = new Marked({
  async: false,
  gfm: true,
  breaks: false,
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag): string {
      return escapeHtml(text);
    },
    heading({ tokens }: Tokens.Heading): string {
      return `<p><strong>${this.parser.parseInline(tokens)}</strong></p>\n`;
    },
    link({ href, title, tokens }: Tokens.Link): string {
      const text = this.parser.parseInline(tokens);
      if (!/^(https?:|mailto:|tel:)/i.test(href)) return text;
      const external = /^https?:/i.test(href);
      const titleAttr = title ? ` title="${escapeHtml(title)}"` : '';
      return external
        ? `<a href="${escapeHtml(href)}"${titleAttr} target="_blank" rel="noopener noreferrer">${text}<span class="sr-only"> (s’ouvre dans un nouvel onglet)</span></a>`
        : `<a href="${escapeHtml(href)}"${titleAttr}>${text}</a>`;
    },
    image({ href, text }: Tokens.Image): string {
      if (!/^https:/i.test(href)) return escapeHtml(text);
      return `<img src="${escapeHtml(href)}" alt="${escapeHtml(text)}" loading="lazy">`;
    },
  },
});

export function markdown(source: string): SafeHtml {
  return raw(marked.parse(source) as string);
}

/** One line of Markdown (a checklist item) → inline HTML, same safety rules. */
export function inlineMarkdown(source: string): SafeHtml {
  return raw(marked.parseInline(source) as string);
}
