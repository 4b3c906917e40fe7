// Sends the forms marked data-auto-submit as soon as the page is read (the Deep Linking response goes
// back to the platform through the browser). Served from /static/ at a content-hashed URL (and as
// /assets/lti/auto-post.js): no inline script.
document.querySelectorAll('form[data-auto-submit]').forEach((form) => {
  form.submit();
});
