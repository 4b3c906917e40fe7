import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config/index.js';

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  /** Where mail goes: "smtp" (SMTP_URL) or "file" (DATA_DIR/mail, development and tests). */
  kind: 'smtp' | 'file';
  send(mail: OutgoingMail): Promise<{ messageId: string | null; file?: string }>;
  close(): void;
}

/**
 * Outgoing mail from the configuration: SMTP_URL through nodemailer's SMTP transport; without it, outside
 * production, each message is built by nodemailer and written as an .eml file under DATA_DIR/mail (open
 * it with any mail client); in production without SMTP_URL there is no mailer (null) and nothing is sent.
 * nodemailer is loaded on the first message, not at start-up.
 */
export function createMailer(config: Config): Mailer | null {
  const from = config.mailFrom;
  const smtpUrl = config.smtpUrl;
  if (!smtpUrl && config.nodeEnv === 'production') return null;
  let transport: Promise<Transporter> | undefined;
  const open = () => {
    transport ??= import('nodemailer').then(({ default: nodemailer }) =>
      smtpUrl
        ? nodemailer.createTransport(smtpUrl)
        : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' }),
    );
    return transport;
  };
  const close = () => {
    void transport?.then((t) => t.close());
  };
  if (smtpUrl) {
    return {
      kind: 'smtp',
      async send(mail) {
        const info = await (await open()).sendMail({ from, ...mail });
        return { messageId: info.messageId ?? null };
      },
      close,
    };
  }
  return {
    kind: 'file',
    async send(mail) {
      const info = await (await open()).sendMail({ from, ...mail });
      await mkdir(config.mailDir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const file = join(config.mailDir, `${stamp}-${randomBytes(4).toString('hex')}.eml`);
      await writeFile(file, info.message as Buffer, { mode: 0o600 });
      return { messageId: info.messageId ?? null, file };
    },
    close,
  };
}
