import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type PDFDocumentType from 'pdfkit';
import type QRCode from 'qrcode';

/** The PDF libraries and fonts of the certificate renderer (pdf.ts), loaded once per process. */

// pdfkit parses a font file on every document unless it is handed an already parsed fontkit font, and
// shapes every word again in each document. Parsing once per process and memoising word shaping across
// documents is what makes ≥ 50 PDFs a second possible on one core. fontkit is pdfkit's own dependency,
// resolved from pdfkit so that the two always agree.
// pdfkit, fontkit and qrcode are loaded on the first render, not at start: they cost ~0.3 s of start-up.
interface PdfLibraries {
  PDFDocument: typeof PDFDocumentType;
  QRCode: typeof QRCode;
  fontkit: { create(buffer: Buffer): FontkitFont };
}
let libraries: Promise<PdfLibraries> | undefined;
export function pdfLibraries(): Promise<PdfLibraries> {
  libraries ??= Promise.all([import('pdfkit'), import('qrcode')]).then(([pdfkit, qrcode]) => ({
    PDFDocument: pdfkit.default,
    QRCode: qrcode.default,
    fontkit: createRequire(createRequire(import.meta.url).resolve('pdfkit'))('fontkit') as PdfLibraries['fontkit'],
  }));
  return libraries;
}

interface GlyphPosition {
  xAdvance: number;
  yAdvance: number;
  xOffset: number;
  yOffset: number;
}
interface GlyphRun {
  glyphs: unknown[];
  positions: GlyphPosition[];
  readonly advanceWidth: number;
}
interface FontkitFont {
  layout(text: string, features?: unknown, ...rest: unknown[]): GlyphRun;
  getGlyph(id: number, characters?: number[]): { _decode?: () => unknown } | null;
}

const SHAPING_CACHE_LIMIT = 20_000;

/**
 * Memoises shaping per word. pdfkit scales the positions it gets in place, so each caller receives
 * fresh position objects; glyphs are immutable and shared.
 */
function memoiseLayout(font: FontkitFont): FontkitFont {
  const layout = font.layout.bind(font);
  const cache = new Map<string, { glyphs: unknown[]; positions: GlyphPosition[] }>();
  font.layout = (text: string, features?: unknown, ...rest: unknown[]): GlyphRun => {
    if (features !== undefined || rest.length > 0) return layout(text, features, ...rest);
    let entry = cache.get(text);
    if (!entry) {
      const run = layout(text);
      entry = { glyphs: run.glyphs, positions: run.positions.map((p) => ({ ...p })) };
      if (cache.size >= SHAPING_CACHE_LIMIT) cache.clear();
      cache.set(text, entry);
    }
    const positions = entry.positions.map((p) => ({ ...p }));
    return {
      glyphs: entry.glyphs,
      positions,
      get advanceWidth() {
        let width = 0;
        for (const p of positions) width += p.xAdvance;
        return width;
      },
    };
  };
  return font;
}

/**
 * Embedding a subset re-parses the outline of every glyph used (fontkit only needs to know whether it is
 * a composite). Glyph objects are cached by the font, so their parsed outline can be too; nothing
 * mutates it for a non-variable font such as DejaVu.
 */
function memoiseGlyphDecoding(font: FontkitFont): FontkitFont {
  const getGlyph = font.getGlyph.bind(font);
  const patched = new WeakSet<object>();
  font.getGlyph = (id, characters) => {
    const glyph = getGlyph(id, characters);
    if (glyph && typeof glyph._decode === 'function' && !patched.has(glyph)) {
      const decode = glyph._decode.bind(glyph);
      let decoded: { value: unknown } | undefined;
      glyph._decode = () => {
        decoded ??= { value: decode() };
        return decoded.value;
      };
      patched.add(glyph);
    }
    return glyph;
  };
  return font;
}

export const FONT_DIR = new URL('./assets/fonts/', import.meta.url);
let fonts: { regular: FontkitFont; bold: FontkitFont } | undefined;
export function loadFonts(fontkit: PdfLibraries['fontkit']): { regular: FontkitFont; bold: FontkitFont } {
  fonts ??= {
    regular: memoiseGlyphDecoding(memoiseLayout(fontkit.create(readFileSync(new URL('DejaVuSans.ttf', FONT_DIR))))),
    bold: memoiseGlyphDecoding(memoiseLayout(fontkit.create(readFileSync(new URL('DejaVuSans-Bold.ttf', FONT_DIR))))),
  };
  return fonts;
}
