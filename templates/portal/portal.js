// hisp portal: a little progressive enhancement; every page works without it.
// - A recipient list narrows as one types in its "Find a recipient" box.
// - Files dropped anywhere on the attachments area join the file picker's list.
(function () {
  'use strict';

  var filter = document.getElementById('filter');
  var choices = document.getElementById('choices');
  if (filter && choices) {
    filter.addEventListener('input', function () {
      var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      Array.prototype.forEach.call(choices.children, function (item) {
        var text = item.getAttribute('data-search') || '';
        var shown = words.every(function (w) { return text.indexOf(w) >= 0; });
        // A checked recipient stays in view.
        item.hidden = !shown && !item.querySelector('input').checked;
      });
    });
  }

  var zone = document.getElementById('dropzone');
  var input = document.getElementById('files');
  var chosen = document.getElementById('chosen');
  if (zone && input && typeof DataTransfer !== 'undefined') {
    var show = function () {
      chosen.textContent = '';
      Array.prototype.forEach.call(input.files, function (file) {
        var li = document.createElement('li');
        li.textContent = file.name + ' (' + Math.max(1, Math.round(file.size / 1024)) + ' KB)';
        chosen.appendChild(li);
      });
    };
    input.addEventListener('change', show);
    ['dragenter', 'dragover'].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add('over'); });
    });
    ['dragleave', 'drop'].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove('over'); });
    });
    zone.addEventListener('drop', function (e) {
      e.preventDefault();
      var all = new DataTransfer();
      Array.prototype.forEach.call(input.files, function (f) { all.items.add(f); });
      Array.prototype.forEach.call(e.dataTransfer.files, function (f) { all.items.add(f); });
      input.files = all.files;
      show();
    });
  }
})();
