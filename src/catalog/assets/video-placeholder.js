// The video placeholder's title, read from its URL (?titre=…): the page itself stays static and cacheable.

const title = new URLSearchParams(location.search).get('titre');
if (title) document.getElementById('titre').textContent = `« ${title.slice(0, 200)} »`;
