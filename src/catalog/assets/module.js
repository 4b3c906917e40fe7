// Module page: records "part seen" and quiz answers through the JSON API without reloading the page.
// Without JavaScript the same forms post to HTML routes and the page comes back updated.
// The session token is held by the page (window.emargementSession, set up by the LTI capability):
// no cookie is involved, so it works in the LMS iframe with third-party cookies blocked.
(() => {
  const body = document.body;
  const session = window.emargementSession;
  if (!session || body.dataset.preview === 'true') return;
  const moduleId = body.dataset.moduleId;

  async function post(url, payload) {
    const res = await session.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(payload),
      credentials: 'omit',
    });
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const message = data && typeof data.title === 'string' ? data.title : 'L’enregistrement n’a pas fonctionné.';
      throw new Error(message);
    }
    return data;
  }

  function showProgress(p) {
    const bar = document.getElementById('progress-bar');
    const text = document.getElementById('progress-text');
    if (bar) bar.value = p.done.length;
    if (text) {
      text.textContent = p.complete
        ? `Module terminé : ${p.total} parties sur ${p.total}.`
        : `Progression : ${p.done.length} ${p.done.length > 1 ? 'parties terminées' : 'partie terminée'} sur ${p.total}.`;
    }
    for (const id of p.done) {
      const mark = document.querySelector(`[data-state-for="${CSS.escape(id)}"]`);
      if (mark && !mark.textContent) mark.innerHTML = '<span aria-hidden="true">✓</span> terminé';
    }
    const completion = document.getElementById('completion');
    if (p.complete && completion && !completion.firstElementChild) {
      completion.innerHTML =
        '<div class="box complete"><p><strong>Bravo, vous avez terminé ce module.</strong> Votre progression est enregistrée : vous pouvez passer au module suivant du cours.</p></div>';
    }
  }

  function showError(form, message, network = true) {
    let p = form.querySelector('.js-error');
    if (!p) {
      p = document.createElement('p');
      p.className = 'field-error js-error';
      p.setAttribute('role', 'alert');
      form.prepend(p);
    }
    p.textContent = network ? `${message} Vérifiez votre connexion puis réessayez.` : message;
  }

  for (const form of document.querySelectorAll('form.seen-form')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const button = form.querySelector('button');
      if (button) button.disabled = true;
      try {
        const progress = await post('/api/catalog/progress/seen', { moduleId, blockId: form.dataset.blockId });
        const done = document.createElement('p');
        done.className = 'done-mark';
        done.innerHTML = '<span aria-hidden="true">✓</span> Partie terminée.';
        if (button) button.replaceWith(done);
        form.querySelector('.js-error')?.remove();
        showProgress(progress);
        // Keyboard and screen-reader users continue with the next part.
        const next = form.closest('section')?.nextElementSibling?.querySelector('h2');
        if (next) next.focus();
      } catch (error) {
        if (button) button.disabled = false;
        showError(form, error.message);
      }
    });
  }

  const quiz = document.querySelector('form.quiz-form');
  if (quiz) {
    quiz.addEventListener('submit', async (event) => {
      event.preventDefault();
      const sets = [...quiz.querySelectorAll('fieldset[data-question]')];
      const answers = sets.map((set) => {
        const checked = set.querySelector('input[type=radio]:checked');
        return checked ? Number(checked.value) : null;
      });
      const missing = answers.indexOf(null);
      if (missing >= 0) {
        showError(quiz, 'Répondez à toutes les questions avant de valider.', false);
        sets[missing].querySelector('input')?.focus();
        return;
      }
      const button = quiz.querySelector('button[type=submit]');
      if (button) button.disabled = true;
      try {
        const data = await post('/api/catalog/progress/quiz', { moduleId, answers });
        quiz.querySelector('.js-error')?.remove();
        data.results.forEach((r, i) => {
          const slot = sets[i].querySelector('.feedback-slot');
          const right = sets[i].querySelectorAll('label span')[r.answer]?.textContent ?? '';
          const p = document.createElement('p');
          p.className = `feedback ${r.correct ? 'right' : 'wrong'}`;
          const strong = document.createElement('strong');
          strong.textContent = r.correct ? 'Bonne réponse.' : 'Pas tout à fait.';
          p.append(strong, r.correct ? ` ${r.explanation}` : ` La bonne réponse : « ${right} ». ${r.explanation}`);
          slot.replaceChildren(p);
        });
        const score = document.querySelector('.quiz-score');
        if (score) {
          const s = data.correct > 1 ? 's' : '';
          score.textContent = `Vous avez ${data.correct} bonne${s} réponse${s} sur ${data.total}. Le quiz est enregistré.`;
        }
        if (button) button.textContent = 'Valider à nouveau';
        showProgress(data.progress);
      } catch (error) {
        showError(quiz, error.message);
      } finally {
        if (button) button.disabled = false;
      }
    });
  }
})();
