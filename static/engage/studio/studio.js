/* The template studio (templates/admin/engage/prompttemplate/studio.html).
 * CodeMirror 5 with the Jinja2 mode; unknown variables flagged as you type; a debounced live
 * preview; save / publish / rollback / diff through the JSON admin endpoints (engage/studio/views.py). */
(function () {
  "use strict";
  // Django's JavaScript catalog (admin:jsi18n, loaded before this file) translates; English without it.
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (format, values) {
    return format.replace(/%\(\w+\)s/g, function (match) { return String(values[match.slice(2, -2)]); });
  };
  var PREVIEW_DELAY_MS = 400;
  var config = JSON.parse(document.getElementById("studio-config").textContent);
  var known = new Set(config.variables);
  var csrf = document.querySelector("#studio input[name=csrfmiddlewaretoken]").value;
  var $ = function (id) { return document.getElementById(id); };

  var editor = CodeMirror.fromTextArea($("studio-body"), {
    mode: "jinja2", lineNumbers: true, lineWrapping: true, readOnly: !config.can_edit,
    placeholder: gettext("Write the prompt. Insert variables from the list below.")
  });
  window.studioEditor = editor; // for people (and tests) poking at the page

  function request(method, url, body) {
    var options = {method: method, credentials: "same-origin", headers: {"X-CSRFToken": csrf, "Accept": "application/json"}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return {ok: response.ok, status: response.status, data: data};
      });
    });
  }

  function errorText(data) {
    var error = (data && data.error) || {};
    var text = error.message || gettext("Something went wrong.");
    return error.line ? text + " " + interpolate(gettext("(line %(line)s)"), {line: error.line}, true) : text;
  }

  // --- unknown variables, as you type -------------------------------------------------------
  var marks = [];
  var KEYWORDS = new Set(["if", "else", "elif", "endif", "for", "endfor", "in", "not", "and", "or", "is",
    "true", "false", "none", "True", "False", "None", "loop", "set", "endset", "with", "endwith", "default",
    "upper", "lower", "title", "trim", "length", "replace", "round", "int", "string", "join", "capitalize", "e", "escape"]);

  function lint() {
    marks.forEach(function (mark) { mark.clear(); });
    marks = [];
    var unknown = new Set();
    var text = editor.getValue();
    var block = /(\{\{|\{%)([\s\S]*?)(\}\}|%\}|$)/g;
    var match;
    while ((match = block.exec(text)) !== null) {
      var inner = match[2];
      var start = match.index + match[1].length;
      // Names that are not attributes (after a dot), filters (after |) or quoted strings.
      var names = /("[^"]*"|'[^']*')|([.|]\s*)?\b([A-Za-z_][A-Za-z0-9_]*)\b/g;
      var name;
      var loopNames = new Set();
      var forMatch = /^\s*for\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(inner);
      if (forMatch) { loopNames.add(forMatch[1]); }
      while ((name = names.exec(inner)) !== null) {
        if (name[1] || name[2] || !name[3]) { continue; }
        var word = name[3];
        if (known.has(word) || KEYWORDS.has(word) || loopNames.has(word)) { continue; }
        unknown.add(word);
        var from = editor.posFromIndex(start + name.index);
        var to = editor.posFromIndex(start + name.index + word.length);
        marks.push(editor.markText(from, to, {className: "studio-unknown-variable", title: gettext("Unknown variable")}));
      }
      if (!match[3]) { break; }
    }
    var note = $("studio-lint");
    if (unknown.size) {
      note.textContent = interpolate(gettext("Unknown variable(s): %(names)s. Use only the variables listed below."),
                                     {names: Array.from(unknown).sort().join(", ")}, true);
      note.className = "studio-lint errornote";
    } else {
      note.textContent = "";
      note.className = "studio-lint";
    }
    return unknown.size === 0;
  }

  // --- live preview -------------------------------------------------------------------------
  var previewTimer = null;
  var previewSequence = 0;

  function schedulePreview() {
    if (!config.can_edit) { return; }
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, PREVIEW_DELAY_MS);
  }

  function preview() {
    var sequence = ++previewSequence;
    var body = {body: editor.getValue(), subject_id: $("studio-subject").value || null,
                sample_output: $("studio-sample-output").value};
    return request("POST", config.urls.studio_preview, body).then(function (result) {
      if (sequence !== previewSequence) { return; } // an older answer arriving late
      var problem = $("studio-preview-error");
      if (!result.ok) {
        problem.textContent = errorText(result.data);
        problem.hidden = false;
        return;
      }
      problem.hidden = true;
      $("studio-rendered").textContent = result.data.rendered;
      $("studio-sample-note").textContent = result.data.note || "";
      var rows = $("studio-channels").querySelector("tbody");
      rows.innerHTML = "";
      result.data.channels.forEach(function (channel) {
        var row = document.createElement("tr");
        row.dataset.channel = channel.channel;
        var judged = channel.is_safe !== null && channel.is_safe !== undefined;
        var length = !judged ? "—" : channel.segments !== undefined
          ? interpolate(gettext("%(length)s characters, %(segments)s segment(s)"),
                        {length: channel.length, segments: channel.segments}, true)
          : interpolate(gettext("%(length)s characters"), {length: channel.length}, true);
        var limit = channel.limit + (!judged ? "" : channel.is_within_limit ? " ✓" : " ✗ " + gettext("too long"));
        [channel.label, length, limit].forEach(function (text) {
          var cell = document.createElement("td");
          cell.textContent = text;
          row.appendChild(cell);
        });
        var verdict = document.createElement("td");
        if (!judged) {
          verdict.textContent = gettext("no sample yet");
          verdict.className = "quiet";
        } else if (channel.is_safe) {
          verdict.textContent = gettext("passes");
          verdict.className = "studio-ok";
        } else {
          // Every reason, each with what to change (textContent only: the texts are never HTML).
          verdict.className = "studio-bad";
          var title = document.createElement("strong");
          title.textContent = interpolate(gettext("rejected (%(count)s)"), {count: channel.reasons.length}, true);
          verdict.appendChild(title);
          var list = document.createElement("ul");
          list.className = "studio-reasons";
          channel.reasons.forEach(function (reason) {
            var item = document.createElement("li");
            item.dataset.code = reason.code;
            var message = document.createElement("span");
            message.textContent = reason.message;
            item.appendChild(message);
            if (reason.advice) {
              var advice = document.createElement("span");
              advice.className = "quiet studio-advice";
              advice.textContent = " " + reason.advice;
              item.appendChild(advice);
            }
            list.appendChild(item);
          });
          verdict.appendChild(list);
        }
        row.appendChild(verdict);
        rows.appendChild(row);
      });
      document.body.dataset.previewCount = String(Number(document.body.dataset.previewCount || 0) + 1);
    });
  }

  editor.on("change", function () { lint(); schedulePreview(); });

  // --- variables: one click inserts at the cursor --------------------------------------------
  document.querySelectorAll(".studio-insert").forEach(function (button) {
    button.addEventListener("click", function () {
      editor.replaceSelection("{{ " + button.dataset.variable + " }}");
      editor.focus();
    });
  });

  // --- who the preview is for ------------------------------------------------------------------
  var subjectTimer = null;
  // The person picked stays picked across the reloads that follow a save or a publish.
  var memoryKey = "studio-subject:" + config.urls.studio;
  var remembered = window.sessionStorage.getItem(memoryKey) || "";
  function searchSubjects() {
    var query = $("studio-subject-search").value;
    return request("GET", config.urls.studio_subjects + "?q=" + encodeURIComponent(query)).then(function (result) {
      if (!result.ok) { return; }
      var select = $("studio-subject");
      var chosen = select.value;
      select.innerHTML = "";
      var sample = document.createElement("option");
      sample.value = "";
      sample.textContent = gettext("Sample values");
      select.appendChild(sample);
      result.data.results.forEach(function (item) {
        var option = document.createElement("option");
        option.value = item.id;
        option.textContent = item.label;
        select.appendChild(option);
      });
      if (remembered && !query) {
        select.value = remembered;
        remembered = "";
      } else if (query && result.data.results.length) {
        select.value = String(result.data.results[0].id);
      } else {
        select.value = chosen;
      }
      window.sessionStorage.setItem(memoryKey, select.value);
      if (select.value !== chosen) { preview(); }
    });
  }

  if (config.can_edit) {
    $("studio-subject-search").addEventListener("input", function () {
      clearTimeout(subjectTimer);
      subjectTimer = setTimeout(searchSubjects, PREVIEW_DELAY_MS);
    });
    $("studio-subject").addEventListener("change", function () {
      window.sessionStorage.setItem(memoryKey, $("studio-subject").value);
      preview();
    });
    $("studio-sample-output").addEventListener("input", schedulePreview);
    $("studio-generate").addEventListener("click", function () {
      var note = $("studio-generate-note");
      note.textContent = gettext("Asking the model…");
      request("POST", config.urls.studio_sample, {body: editor.getValue(), subject_id: $("studio-subject").value || null,
                                                   channel: $("studio-sample-channel").value})
        .then(function (result) {
          if (!result.ok) { note.textContent = errorText(result.data); return; }
          $("studio-sample-output").value = result.data.text;
          if (!result.data.is_model_configured) {
            note.textContent = gettext("No model is configured: this is the approved fallback text.");
          } else if (result.data.is_fallback) {
            var why = (result.data.reasons || []).map(function (reason) { return reason.message; }).join(" · ");
            note.textContent = interpolate(gettext("The model's answer was not usable (%(why)s): this is the fallback text."),
                                           {why: why || result.data.reason}, true);
          } else {
            note.textContent = gettext("A sample from the model.");
          }
          preview();
        });
    });
    $("studio-save").addEventListener("click", function () {
      var out = $("studio-save-result");
      if (!lint()) { out.textContent = gettext("Fix the unknown variables first."); return; }
      request("POST", config.urls.studio_save, {body: editor.getValue()}).then(function (result) {
        if (!result.ok) { out.textContent = errorText(result.data); return; }
        window.location.href = config.urls.studio + "?version=" + result.data.version + "&saved=1";
      });
    });
  }

  // --- publish, rollback -------------------------------------------------------------------------
  function approve(url, number, question) {
    if (!window.confirm(question)) { return; }
    request("POST", url, {version: Number(number)}).then(function (result) {
      if (!result.ok) { $("studio-approve-result").textContent = errorText(result.data); return; }
      window.location.href = config.urls.studio + "?version=" + result.data.version + "&published=1";
    });
  }
  document.querySelectorAll(".studio-publish").forEach(function (button) {
    button.addEventListener("click", function () {
      approve(config.urls.studio_publish, button.dataset.version,
        interpolate(gettext("Publish v%(number)s? Campaigns and replies use it from now on."),
                    {number: button.dataset.version}, true));
    });
  });
  document.querySelectorAll(".studio-rollback").forEach(function (button) {
    button.addEventListener("click", function () {
      approve(config.urls.studio_rollback, button.dataset.version,
        interpolate(gettext("Roll back to v%(number)s? It becomes the live version again."),
                    {number: button.dataset.version}, true));
    });
  });

  // --- diff -----------------------------------------------------------------------------------------
  var diffButton = $("studio-diff-show");
  if (diffButton) {
    diffButton.addEventListener("click", function () {
      var url = config.urls.studio_diff + "?from=" + $("studio-diff-from").value + "&to=" + $("studio-diff-to").value;
      request("GET", url).then(function (result) {
        // The table is difflib's HtmlDiff output: the version texts in it are escaped by difflib.
        $("studio-diff-table").innerHTML = result.ok ? result.data.html : "";
        if (!result.ok) { $("studio-diff-table").textContent = errorText(result.data); }
      });
    });
  }

  lint();
  if (config.can_edit) {
    if (remembered) {
      searchSubjects().then(function () { if (!previewSequence) { preview(); } });
    } else {
      preview();
    }
  }
})();
