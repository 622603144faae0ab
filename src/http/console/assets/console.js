// The console's only script, and every page works without it: it filters the rule catalogue
// as you type and reads an uploaded file into the playground's text box.
"use strict";
(function () {
  var filter = document.getElementById("rule-filter");
  if (filter) {
    var rules = document.querySelectorAll("article.rule");
    var count = document.getElementById("rule-count");
    filter.addEventListener("input", function () {
      var q = filter.value.trim().toLowerCase();
      var shown = 0;
      rules.forEach(function (r) {
        var hit = q === "" || r.textContent.toLowerCase().indexOf(q) !== -1;
        r.hidden = !hit;
        if (hit) { shown += 1; }
      });
      if (count) { count.textContent = shown + " of " + rules.length + " rules shown"; }
    });
  }
  var upload = document.getElementById("upload");
  var body = document.getElementById("body");
  if (upload && body) {
    upload.addEventListener("change", function () {
      var file = upload.files && upload.files[0];
      if (!file) { return; }
      var reader = new FileReader();
      reader.onload = function () { body.value = String(reader.result); body.focus(); };
      reader.readAsText(file);
    });
  }
})();
