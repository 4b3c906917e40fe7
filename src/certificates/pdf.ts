import { readFileSync } from 'node:fs';
import type QRCode from 'qrcode';
import { FONT_DIR, loadFonts, pdfLibraries } from './pdf-libraries.js';
import {
  type CertificateData,
  formatDay,
  formatDayRange,
  formatDuration,
  formatLongDay,
  type ModuleLine,
  printedMinutes,
  timeAlgorithms,
} from './rules.js';

/**
 * The certificate PDF: A4, French, sober, printable. Output is a pure function of the certificate data
 * and the signature image: creation date and file ID come from the data, so rendering twice gives the
 * same bytes (what makes a stored hash meaningful).
 */

const PAGE = { width: 595.28, height: 841.89 };
const MARGIN = { left: 46, right: 46, top: 36 };
const FOOTER_HEIGHT = 84;
const CONTENT_WIDTH = PAGE.width - MARGIN.left - MARGIN.right;
const BOTTOM_LIMIT = PAGE.height - FOOTER_HEIGHT - 10;
const INK = '#1d1d1f';
const MUTED = '#555555';
const RULE = '#9aa4ae';

export const RETENTION_UNDERTAKING =
  'Je m’engage à conserver l’ensemble des pièces justificatives qui ont permis d’établir le présent ' +
  'certificat pendant une durée de 3 ans à compter de la fin de l’année du dernier paiement. En cas de ' +
  'cofinancement des fonds européens, la durée de conservation est étendue conformément aux obligations ' +
  'conventionnelles spécifiques.';

export const DISTANCE_FOOTNOTE =
  'Pour les formations à distance, la durée tient compte des activités réalisées et du temps estimé pour les réaliser.';

export interface RenderAssets {
  signatureImage: Buffer;
  /** SHA-256 of the canonical data, printed so that the paper copy points at what was signed. */
  dataSha256: string;
}

export interface RenderOptions {
  /**
   * 'shared' (default): fonts parsed once per process, word shaping memoised across documents.
   * 'per-document': what plain pdfkit usage does (parse the font files for every PDF); the benchmark's
   * baseline. Both give the same bytes.
   */
  fonts?: 'shared' | 'per-document';
}

export async function renderCertificatePdf(
  data: CertificateData,
  assets: RenderAssets,
  options: RenderOptions = {},
): Promise<Buffer> {
  const { PDFDocument, QRCode, fontkit } = await pdfLibraries();
  const { regular, bold } =
    options.fonts === 'per-document'
      ? {
          regular: readFileSync(new URL('DejaVuSans.ttf', FONT_DIR)),
          bold: readFileSync(new URL('DejaVuSans-Bold.ttf', FONT_DIR)),
        }
      : loadFonts(fontkit);
  const issuedAt = new Date(data.issuedAt);
  const doc = new PDFDocument({
    size: 'A4',
    margins: { top: MARGIN.top, left: MARGIN.left, right: MARGIN.right, bottom: 10 },
    bufferPages: true,
    autoFirstPage: true,
    // No default font: Helvetica would otherwise be loaded for nothing.
    font: '',
    lang: 'fr-FR',
    displayTitle: true,
    pdfVersion: '1.7',
    info: {
      Title: `Certificat de réalisation ${data.number}`,
      Author: data.provider.name,
      Subject: `${data.action.title} — attestation de présence`,
      Creator: 'Émargement',
      Producer: 'Émargement (pdfkit)',
      CreationDate: issuedAt,
      ModDate: issuedAt,
    },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  // A parsed fontkit font is accepted by pdfkit at run time; its type declarations only know paths and buffers.
  doc.registerFont('R', regular as unknown as Buffer);
  doc.registerFont('B', bold as unknown as Buffer);
  const w = new Writer(doc);

  header(w, data);
  learnerAndFund(w, data);
  action(w, data);
  durations(w, data);
  moduleTable(w, data.modules, printedMinutes(data).modules);
  closing(w, data, assets.signatureImage);

  const qr = QRCode.create(data.verificationUrl, { errorCorrectionLevel: 'M' });
  const range = doc.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    footer(w, data, assets.dataSha256, qr, i - range.start + 1, range.count);
  }
  doc.end();
  return done;
}

const LINE_GAP = 0.5;

/**
 * Height of `value` in `width` with the current font. A line that fits is measured without pdfkit's
 * line wrapper, which costs more than the rest of the layout (most fields are one line).
 */
function measure(doc: PDFKit.PDFDocument, value: string, width: number): number {
  if (!value.includes('\n') && doc.widthOfString(value) <= width) return doc.currentLineHeight(true) + LINE_GAP;
  return doc.heightOfString(value, { width, lineGap: LINE_GAP });
}

/** Draws `value` at (x, y), wrapped in `width`; a line that fits is placed directly (same result, cheaper). */
function draw(
  doc: PDFKit.PDFDocument,
  value: string,
  x: number,
  y: number,
  width: number,
  align: 'left' | 'right' | 'center' = 'left',
): void {
  const w = doc.widthOfString(value);
  if (!value.includes('\n') && w <= width) {
    const dx = align === 'right' ? width - w : align === 'center' ? (width - w) / 2 : 0;
    doc.text(value, x + dx, y, { lineBreak: false, lineGap: LINE_GAP });
  } else {
    doc.text(value, x, y, { width, align, lineGap: LINE_GAP });
  }
}

/** Keeps the vertical position explicitly: pdfkit's flowing cursor is hard to reason about across pages. */
class Writer {
  y = MARGIN.top;
  constructor(readonly doc: PDFKit.PDFDocument) {}

  ensure(height: number): void {
    if (this.y + height > BOTTOM_LIMIT) {
      this.doc.addPage();
      this.y = MARGIN.top;
    }
  }

  text(
    value: string,
    options: {
      x?: number;
      width?: number;
      size?: number;
      bold?: boolean;
      color?: string;
      align?: 'left' | 'right' | 'center';
    } = {},
  ): number {
    const { doc } = this;
    const width = options.width ?? CONTENT_WIDTH;
    doc
      .font(options.bold ? 'B' : 'R')
      .fontSize(options.size ?? 9.5)
      .fillColor(options.color ?? INK);
    const height = measure(doc, value, width);
    this.ensure(height);
    draw(doc, value, options.x ?? MARGIN.left, this.y, width, options.align);
    return height;
  }

  line(value: string, options: Parameters<Writer['text']>[1] = {}): void {
    this.y += this.text(value, options);
  }

  /** "Label : value" on one line, label in grey, value in ink. */
  field(label: string, value: string, options: { x?: number; width?: number; labelWidth?: number } = {}): void {
    const { doc } = this;
    const x = options.x ?? MARGIN.left;
    const width = options.width ?? CONTENT_WIDTH;
    const labelWidth = options.labelWidth ?? 150;
    doc.font('R').fontSize(9);
    const height = Math.max(measure(doc, label, labelWidth - 6), measure(doc.font('B'), value, width - labelWidth));
    this.ensure(height);
    doc.font('R').fillColor(MUTED);
    draw(doc, label, x, this.y, labelWidth - 6);
    doc.font('B').fillColor(INK);
    draw(doc, value, x + labelWidth, this.y, width - labelWidth);
    this.y += height + 1.5;
  }

  section(title: string, options: { x?: number; width?: number } = {}): void {
    const x = options.x ?? MARGIN.left;
    const width = options.width ?? CONTENT_WIDTH;
    this.ensure(36);
    this.y += 7;
    draw(this.doc.font('B').fontSize(10).fillColor(INK), title, x, this.y, width);
    this.y += 13;
    this.doc
      .moveTo(x, this.y)
      .lineTo(x + width, this.y)
      .lineWidth(0.6)
      .strokeColor(RULE)
      .stroke();
    this.y += 4;
  }
}

function header(w: Writer, data: CertificateData): void {
  const p = data.provider;
  const right = 200;
  const leftWidth = CONTENT_WIDTH - right - 10;
  const top = w.y;
  w.line(p.name, { bold: true, size: 10.5, width: leftWidth });
  w.line([...p.address.lines, `${p.address.postalCode} ${p.address.city}`].join(', '), {
    size: 8,
    width: leftWidth,
    color: MUTED,
  });
  w.line(`SIRET : ${p.siret}`, { size: 8, width: leftWidth, color: MUTED });
  w.line(
    `Déclaration d’activité n° ${p.activityDeclarationNumber} (cet enregistrement ne vaut pas agrément de l’État)`,
    { size: 8, width: leftWidth, color: MUTED },
  );
  const leftBottom = w.y;

  const x = MARGIN.left + CONTENT_WIDTH - right;
  w.y = top;
  w.line('Certificat n°', { x, width: right, size: 8, color: MUTED, align: 'right' });
  w.line(data.number, { x, width: right, bold: true, size: 10.5, align: 'right' });
  w.line(`Version ${data.version}${data.supersedes ? `, remplace le n° ${data.supersedes}` : ''}`, {
    x,
    width: right,
    size: 8,
    color: MUTED,
    align: 'right',
  });
  w.line(`Délivré le ${formatDay(data.issuedDay)}`, { x, width: right, size: 8, color: MUTED, align: 'right' });
  w.y = Math.max(leftBottom, w.y) + 10;

  w.line('CERTIFICAT DE RÉALISATION', { bold: true, size: 16, align: 'center' });
  w.line('Attestation de présence — formation à distance', { size: 10, align: 'center', color: MUTED });
  w.y += 8;
  w.line(
    `Je soussigné(e) ${p.signatory.name}, ${p.signatory.role}, représentant légal de l’organisme de formation ` +
      `${p.name}, atteste que :`,
    { size: 9 },
  );
}

function fullName(data: CertificateData): string {
  const { civility, givenName, familyName } = data.learner;
  return [civility, givenName, familyName.toLocaleUpperCase('fr-FR')].filter(Boolean).join(' ');
}

/** Two blocks side by side: the learner and their company on the left, the fund on the right. */
function learnerAndFund(w: Writer, data: CertificateData): void {
  const half = (CONTENT_WIDTH - 16) / 2;
  const rightX = MARGIN.left + half + 16;
  const top = w.y;
  w.section('Stagiaire', { width: half });
  w.field('Nom', fullName(data), { width: half, labelWidth: 62 });
  w.field('Entreprise', data.company.name ?? 'non renseignée', { width: half, labelWidth: 62 });
  w.field('SIRET', data.company.siret ?? 'non renseigné', { width: half, labelWidth: 62 });
  const leftBottom = w.y;
  w.y = top;
  w.section('Financement', { x: rightX, width: half });
  const fund = data.fund;
  w.field('OPCO', fund?.name ?? 'non renseigné', { x: rightX, width: half, labelWidth: 100 });
  if (fund) {
    w.field('Ancien nom (OPCA)', fund.historicalName ?? '—', { x: rightX, width: half, labelWidth: 100 });
    const fileNumber = fund.fileNumber ?? (fund.fileNumberToConfirm ? 'à confirmer' : 'non communiqué');
    w.field('N° de dossier', fileNumber, { x: rightX, width: half, labelWidth: 100 });
  }
  w.y = Math.max(leftBottom, w.y);
}

function action(w: Writer, data: CertificateData): void {
  w.section('Action suivie');
  w.field('Intitulé', data.action.title, { labelWidth: 110 });
  w.field('Nature de l’action', data.action.nature, { labelWidth: 110 });
  w.field('Modalité', data.action.modality, { labelWidth: 110 });
  const { startDay, endDay, datesFrom } = data.action;
  const dates =
    startDay && endDay
      ? `du ${formatDay(startDay)} au ${formatDay(endDay)}${datesFrom === 'session' ? ' (dates de la session)' : ' (première et dernière activité)'}`
      : 'aucune activité enregistrée';
  w.field('Dates', dates, { labelWidth: 110 });
}

function durations(w: Writer, data: CertificateData): void {
  const d = data.durations;
  // Minutes per row by largest remainder: modules + estimate = total, as printed (docs/time-accounting.md).
  const printed = printedMinutes(data);
  w.section('Durées');
  const half = (CONTENT_WIDTH - 16) / 2;
  const rightX = MARGIN.left + half + 16;
  const top = w.y;
  w.field('Mesurée dans les modules', formatDuration(printed.modulesTotal * 60), { width: half, labelWidth: 175 });
  w.field(
    'Tronc commun, estimée d’après les journaux de la plateforme',
    printed.commonTrunk === null ? 'non disponible' : formatDuration(printed.commonTrunk * 60),
    { width: half, labelWidth: 175 },
  );
  const leftBottom = w.y;
  w.y = top;
  w.field('Durée totale réalisée', formatDuration(printed.total * 60), { x: rightX, width: half, labelWidth: 150 });
  w.field('Durée prévue', formatDuration(d.plannedMinutes * 60), { x: rightX, width: half, labelWidth: 150 });
  w.field('Modules terminés', `${d.modulesCompleted} / ${d.modulesPlanned}`, {
    x: rightX,
    width: half,
    labelWidth: 150,
  });
  w.y = Math.max(leftBottom, w.y);
  // Each closing group session attended, on its own line in a section of its own (src/regroupement), one
  // text run each so that text extraction reads the line whole.
  if (data.groupSessions && data.groupSessions.length > 0) {
    w.section('Regroupement de fin de formation');
    for (const g of data.groupSessions) w.line(g.line, { bold: true, size: 9 });
  }
}

const COLUMNS = [
  { title: 'Module', width: 250 },
  { title: 'Parcours', width: 66 },
  { title: 'Date(s)', width: 88 },
  { title: 'Temps', width: 52 },
  { title: 'Terminé', width: CONTENT_WIDTH - 250 - 66 - 88 - 52 },
] as const;

/** `minutes`: each row's printed minutes (`printedMinutes`), which add up to the printed total. */
function moduleTable(w: Writer, modules: ModuleLine[], minutes: readonly number[]): void {
  w.section('Détail par module');
  const { doc } = w;
  const size = 8;
  const drawHeader = () => {
    let x = MARGIN.left;
    doc.font('B').fontSize(size).fillColor(MUTED);
    for (const c of COLUMNS) {
      draw(doc, c.title, x + 2, w.y, c.width - 4);
      x += c.width;
    }
    w.y += 11;
  };
  w.ensure(24);
  drawHeader();
  if (modules.length === 0) {
    w.line('Aucun module.', { size, color: MUTED });
    return;
  }
  for (const [i, m] of modules.entries()) {
    const cells = [
      m.title,
      m.trunk === 'common' ? 'Tronc commun' : 'Secteur',
      formatShortRange(m.firstDay, m.lastDay),
      formatDuration((minutes[i] ?? 0) * 60),
      m.completed ? 'Oui' : 'Non',
    ];
    doc.font('R').fontSize(size);
    const height = Math.max(...cells.map((c, k) => measure(doc, c, COLUMNS[k]!.width - 4))) + 2;
    if (w.y + height > BOTTOM_LIMIT) {
      doc.addPage();
      w.y = MARGIN.top;
      // The table goes on: say so, and repeat its headers.
      w.line('Détail par module (suite)', { bold: true, size: 9 });
      w.y += 2;
      drawHeader();
    }
    if (i % 2 === 0)
      doc
        .rect(MARGIN.left, w.y - 1, CONTENT_WIDTH, height)
        .fillColor('#f2f4f6')
        .fill();
    let x = MARGIN.left;
    doc.fillColor(INK);
    for (const [k, c] of cells.entries()) {
      doc.font(k === 4 && m.completed ? 'B' : 'R').fontSize(size);
      draw(doc, c, x + 2, w.y, COLUMNS[k]!.width - 4);
      x += COLUMNS[k]!.width;
    }
    w.y += height;
  }
}

/** "05/01/2026", or "06/01 – 07/01/2026" within a year: fits one table line. */
function formatShortRange(first: string | null, last: string | null): string {
  if (first && last && last !== first && first.slice(0, 4) === last.slice(0, 4)) {
    return `${formatDay(first).slice(0, 5)} – ${formatDay(last)}`;
  }
  return formatDayRange(first, last);
}

function closing(w: Writer, data: CertificateData, signatureImage: Buffer): void {
  const p = data.provider;
  w.y += 8;
  w.line(RETENTION_UNDERTAKING, { size: 8 });
  w.y += 6;
  const blockHeight = 66;
  w.ensure(blockHeight);
  const top = w.y;
  w.line(`Fait à ${p.place}, le ${formatLongDay(data.issuedDay)}`, { size: 9 });
  w.y += 3;
  w.line(p.signatory.name, { bold: true, size: 9 });
  w.line(p.signatory.role, { size: 8.5, color: MUTED });
  const boxWidth = 170;
  const boxX = MARGIN.left + CONTENT_WIDTH - boxWidth;
  w.doc.font('R').fontSize(7).fillColor(MUTED);
  draw(w.doc, 'Signature et cachet', boxX, top, boxWidth, 'center');
  if (signatureImage.length > 0) {
    w.doc.image(signatureImage, boxX + 10, top + 10, { fit: [boxWidth - 20, 52], align: 'center', valign: 'center' });
  }
  w.y = Math.max(w.y, top + blockHeight);
}

function footer(
  w: Writer,
  data: CertificateData,
  dataSha256: string,
  qr: ReturnType<typeof QRCode.create>,
  pageNumber: number,
  pageCount: number,
): void {
  const { doc } = w;
  const top = PAGE.height - FOOTER_HEIGHT;
  doc
    .moveTo(MARGIN.left, top - 6)
    .lineTo(MARGIN.left + CONTENT_WIDTH, top - 6)
    .lineWidth(0.6)
    .strokeColor(RULE)
    .stroke();
  const qrSize = 72;
  drawQr(doc, qr, MARGIN.left, top, qrSize);
  const x = MARGIN.left + qrSize + 12;
  const width = CONTENT_WIDTH - qrSize - 12;
  let y = top;
  const put = (value: string, size: number, bold = false, color = MUTED) => {
    doc
      .font(bold ? 'B' : 'R')
      .fontSize(size)
      .fillColor(color);
    draw(doc, value, x, y, width);
    y += measure(doc, value, width) + 1;
  };
  put('Vérifier l’authenticité de ce certificat :', 8, true, INK);
  put(data.verificationUrl, 8, false, INK);
  put(
    `Certificat n° ${data.number}, version ${data.version}. ${algorithmsSentence(data)} ` +
      `Données signées (Ed25519), empreinte SHA-256 : ${dataSha256}`,
    6.5,
  );
  put(DISTANCE_FOOTNOTE, 6.5);
  doc.font('R').fontSize(7).fillColor(MUTED);
  draw(doc, `Page ${pageNumber} / ${pageCount}`, MARGIN.left, PAGE.height - 24, CONTENT_WIDTH, 'right');
}

/** Both versions behind the printed times: the modules' algorithm, and the LMS estimate's when printed. */
function algorithmsSentence(data: CertificateData): string {
  const [inTool, lms] = timeAlgorithms(data);
  return lms
    ? `Temps dans les modules calculé selon l’algorithme ${inTool} ; tronc commun estimé selon l’algorithme ${lms}.`
    : `Temps de connexion calculé selon l’algorithme ${inTool}.`;
}

/** Vector QR: crisp at any print size, and no image to decode per document. */
function drawQr(doc: PDFKit.PDFDocument, qr: ReturnType<typeof QRCode.create>, x: number, y: number, size: number) {
  const n = qr.modules.size;
  const quiet = 2;
  const cell = size / (n + 2 * quiet);
  doc.rect(x, y, size, size).fillColor('#ffffff').fill();
  for (let r = 0; r < n; r++) {
    let c = 0;
    while (c < n) {
      if (!qr.modules.get(r, c)) {
        c++;
        continue;
      }
      const start = c;
      while (c < n && qr.modules.get(r, c)) c++;
      doc.rect(x + (quiet + start) * cell, y + (quiet + r) * cell, (c - start) * cell, cell);
    }
  }
  doc.fillColor('#000000').fill();
}
