// Profile and onboarding form: after a refused submission, move focus to the summary of what is wrong,
// so that screen-reader and keyboard users hear it first and can jump to each field from its links.
(() => {
  const summary = document.getElementById('erreurs') || document.getElementById('refus');
  if (summary) summary.focus();
})();
