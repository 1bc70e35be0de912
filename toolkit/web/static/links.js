// The units' links on the admin pages: 复制 puts a link on the clipboard, and 重新生成 asks first
// (the old link stops working at once). Without script the link can still be selected and copied,
// and the form is sent without the question.
document.querySelectorAll("button.copy").forEach(function (button) {
  var input = document.getElementById(button.getAttribute("data-copy"));
  if (!input) { return; }
  input.addEventListener("focus", function () { input.select(); });
  function copied() {
    button.textContent = "已复制";
    setTimeout(function () { button.textContent = "复制"; }, 2000);
  }
  function byCommand() {  // plain http on a LAN address: no clipboard API there
    input.focus();
    input.select();
    try {
      if (document.execCommand("copy")) { copied(); }
    } catch (e) { /* the link stays selected: Ctrl-C copies it */ }
  }
  button.addEventListener("click", function () {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, byCommand);
    } else {
      byCommand();
    }
  });
});
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (e) {
    if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); }
  });
});
