import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { migrationStatus } from '../db/index.js';
import { html, page, stylesheet } from '../http/html.js';
import { toolUrls } from '../lti/index.js';

/**
 * The landing page (`/`): what the service is, its state (database, migrations, platform registrations) and
 * where to go next; and `/openedx-config`, the values a course team pastes into Open edX Studio (the page
 * form of `npm run cli -- openedx-config`). Neither shows anything secret.
 */
const STYLE = stylesheet('home', new URL('./assets/home.css', import.meta.url));

export interface ServiceState {
  database: 'pg' | 'pglite';
  migrationsApplied: number;
  migrationsPending: string[];
  registrations: number;
  demo: boolean;
}

export function landingPage(s: ServiceState): string {
  const db = s.database === 'pg' ? 'PostgreSQL' : 'PostgreSQL embarqué (PGlite, pour le développement)';
  const body = html`<h1>Émargement</h1>
<p>Émargement est un outil LTI 1.3 pour le cours « Transition numérique des TPE-PME » de FUN MOOC (Open edX).
Il montre à chaque apprenant les modules du secteur de son fonds de formation (OPCO), mesure honnêtement
son temps de connexion, délivre des certificats de réalisation qu’un fonds peut financer, et donne aux
fonds leurs exports et l’entonnoir de complétion.</p>
<h2>État du service</h2>
<dl class="state" id="etat">
<dt>Base de données</dt><dd>${db}</dd>
<dt>Migrations</dt><dd>${
    s.migrationsPending.length === 0
      ? html`<span class="ok">à jour</span> (${s.migrationsApplied} appliquées)`
      : html`<span class="warn">${s.migrationsPending.length} en attente</span> : ${s.migrationsPending.join(', ')}`
  }</dd>
<dt>Plateformes enregistrées</dt><dd>${s.registrations === 0 ? 'aucune' : String(s.registrations)}</dd>
</dl>
<h2>Aller plus loin</h2>
<ul class="links">
${s.demo ? html`<li><a href="/demo"><strong>Essayer sans LMS</strong></a> : un cours de démonstration qui lance Émargement comme Open edX (développement seulement).</li>` : ''}
<li><a href="/openedx-config">Valeurs à saisir dans Open edX Studio</a> pour ajouter Émargement à un cours.</li>
<li><a href="/portal">Portail des fonds</a> : entonnoir de complétion, exports, numéros de dossier.</li>
<li><a href="/verify">Vérifier un certificat</a> à partir de son numéro.</li>
<li><a href="/docs">Documentation de l’API</a> des exports (OpenAPI).</li>
</ul>
<p class="muted">Santé : <a href="/health">/health</a> · disponibilité : <a href="/ready">/ready</a></p>`;
  return page({ title: 'Accueil', head: STYLE, body });
}

export function openEdxConfigPage(publicUrl: string): string {
  const urls = toolUrls(publicUrl);
  const row = (label: string, value: string, note?: string) =>
    html`<tr><th scope="row">${label}</th><td><code>${value}</code>${note ? html` <span class="muted">${note}</span>` : ''}</td></tr>`;
  const body = html`<h1>Ajouter Émargement dans Open edX Studio</h1>
<p>Dans l’unité du cours, ajoutez un composant « LTI Consumer », choisissez la version « LTI 1.3 » et
renseignez :</p>
<table>
${row('Tool Launch URL', urls.launchUrl)}
${row('Tool Initiate Login URL', urls.loginUrl)}
${row('Registered Redirect URIs', JSON.stringify(urls.redirectUris))}
${row('Tool Public Key Mode', 'Keyset URL')}
${row('Tool Keyset URL', urls.keysetUrl)}
${row('Deep Linking Launch URL', urls.deepLinkingUrl, '(seulement avec le Deep Linking activé)')}
</table>
<h2>Ensuite</h2>
<p>Transmettez à l’exploitation le « Client ID » que Studio affiche pour le composant. Elle enregistre la plateforme :</p>
<p><code>npm run cli -- platforms add --lms &lt;adresse du LMS&gt; --client-id &lt;Client ID&gt; --name "&lt;cours et composant&gt;"</code></p>
<p>Paramètres personnalisés (« Custom parameters ») : <code>theme=visibilite</code> affiche le module du thème
correspondant au fonds de chaque apprenant ; sans paramètre, l’apprenant voit son parcours.</p>
<p><a href="/">Retour à l’accueil</a></p>`;
  return page({ title: 'Valeurs pour Open edX Studio', head: STYLE, body });
}

async function home(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const htmlPage = { config: { html: true }, schema: { response: { 200: Type.String() } } };

  app.get('/', htmlPage, async (_request, reply) => {
    const [status, regs] = await Promise.all([
      migrationStatus(app.db),
      app.db
        .selectFrom('lti_registrations')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('removed_at', 'is', null)
        .executeTakeFirst(),
    ]);
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(
        landingPage({
          database: app.dbKind,
          migrationsApplied: status.applied.length,
          migrationsPending: status.pending,
          registrations: Number(regs?.n ?? 0),
          demo: app.config.demo,
        }),
      );
  });

  app.get('/openedx-config', htmlPage, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(openEdxConfigPage(app.config.publicUrl)),
  );
}

export const homePlugin = fp(home, { name: 'home', fastify: '5.x' });
