// Sends the form marked data-act for the person who opened the page, so one click on a link in
// an e-mail confirms a sign-up or records a vote. The page itself changes nothing: mail link
// scanners fetch every link, and one that runs no script only ever sees the button.
// Scanners that do run scripts are kept out where that is cheap to tell: a browser under
// automation says so (navigator.webdriver), and a page that is never shown, or shown for less
// than a second, sends nothing. A person can always press the button instead.
(function () {
  "use strict";
  var SHOWN_FOR_MS = 1000;
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-act]");
    if (!form || navigator.webdriver) return;
    var wait = document.querySelector("[data-act-wait]");
    var timer = null;
    var sent = false;
    function send() {
      if (sent) return;
      sent = true;
      form.submit();
    }
    function watch() {
      if (document.visibilityState === "visible") {
        if (timer === null && !sent) timer = setTimeout(send, SHOWN_FOR_MS);
      } else {
        clearTimeout(timer);
        timer = null;
      }
    }
    form.addEventListener("submit", function () {
      sent = true;
      clearTimeout(timer);
    });
    if (wait) wait.hidden = false;
    document.addEventListener("visibilitychange", watch);
    watch();
  });
})();
