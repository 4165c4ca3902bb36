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

  // "Verifying Address" as one types Direct addresses: each checked by the node (its certificate
  // found and trusted), shown valid or invalid with the reason.
  var direct = document.getElementById('to_addresses');
  var verdicts = document.getElementById('direct-verdicts');
  if (direct && verdicts && window.fetch) {
    var timer = null;
    var line = function (cls, strong, rest) {
      var p = document.createElement('p');
      p.className = 'verdict ' + cls;
      var b = document.createElement('strong');
      b.textContent = strong;
      p.appendChild(b);
      p.appendChild(document.createTextNode(rest));
      return p;
    };
    var check = function () {
      var wanted = direct.value.split(/[\s,;]+/).filter(function (a) { return /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(a); });
      verdicts.textContent = '';
      wanted.forEach(function (address) {
        var p = line('checking', 'Verifying Address', ': ' + address + '…');
        verdicts.appendChild(p);
        fetch('/messages/verify?format=json&address=' + encodeURIComponent(address), { credentials: 'same-origin' })
          .then(function (r) { return r.json(); })
          .then(function (v) {
            var done = v.valid
              ? line('valid', 'Valid Direct Address', ': ' + address)
              : line('invalid', 'Invalid Direct Address', ': ' + address + ': ' + v.reason);
            verdicts.replaceChild(done, p);
          })
          .catch(function () {
            verdicts.replaceChild(line('invalid', 'Could not verify', ': ' + address + ' (try again)'), p);
          });
      });
    };
    direct.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(check, 600);
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
