// The verification page's PDF check (served as /verify/assets/pdf-check.js: no inline script): the file's
// SHA-256 is computed on the visitor's device and compared with the one the page shows.
document.getElementById('pdf').addEventListener('change', async (event) => {
  var out = document.getElementById('pdf-result');
  var file = event.target.files[0];
  if (!file) return;
  if (!window.crypto || !crypto.subtle) {
    out.textContent = 'Votre navigateur ne peut pas calculer l’empreinte.';
    return;
  }
  var digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  var hex = Array.from(new Uint8Array(digest))
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('');
  var same = hex === document.getElementById('expected').textContent.trim();
  out.textContent = same
    ? 'Ce fichier est bien le certificat délivré sous ce numéro.'
    : 'Ce fichier n’est pas le certificat délivré sous ce numéro : il a été modifié ou il s’agit d’un autre document.';
  out.className = 'state ' + (same ? 'valid' : 'revoked');
});
