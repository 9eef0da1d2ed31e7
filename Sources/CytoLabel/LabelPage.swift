/// The labelling page: one HTML file with its script, served at `/`.
///
/// The page shows the first suggested image large and the next ones small, the model's
/// status and the forecast, and takes one key per image: 1..9 the class, u undo (this
/// tab's last label), s skip (in this tab only). Key presses are sent one after the
/// other (a promise chain), so fast typing labels successive images in order; the
/// image moves on at once, before the answer. Every answer the server refuses is shown
/// as its one line in the message bar, and the state is polled every second (labels of
/// other tabs and edits of the file show up there).
enum LabelPage {
    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>cytocl label</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 1em 2em; background: #fafafa; color: #222; }
        header { display: flex; gap: 2em; align-items: baseline; flex-wrap: wrap; }
        #forecast { font-weight: 600; }
        #message { min-height: 1.4em; color: #a00; margin: .5em 0; }
        #message.info { color: #060; }
        #problem { color: #a00; font-weight: 600; }
        #notice { color: #555; }
        main { display: flex; gap: 2em; align-items: flex-start; }
        #current { width: min(60vh, 60vw); height: min(60vh, 60vw); object-fit: contain; image-rendering: pixelated;
          background: #fff; border: 1px solid #ccc; }
        #next img { width: 8em; height: 8em; object-fit: contain; display: block; margin-bottom: .5em; opacity: .8; border: 1px solid #ddd; }
        #keys span { display: inline-block; margin-right: 1em; }
        kbd { border: 1px solid #999; border-radius: 3px; padding: 0 .3em; background: #fff; }
        </style></head>
        <body>
        <header><h1>cytocl label</h1><span id="forecast"></span><span id="status"></span>
        <span><span id="labelled">0</span> labelled</span></header>
        <div id="keys"></div>
        <div id="message"></div><div id="notice"></div><div id="problem"></div>
        <main><figure><img id="current" alt="" data-path=""><figcaption id="reason"></figcaption></figure>
        <div id="next"></div></main>
        <script>
        "use strict";
        let state = null;
        const pending = new Set();   // labelled by this tab, answer not seen in the state yet
        const skipped = new Set();   // skipped in this tab
        const history = [];          // this tab's labels, for undo: {path, label, previous}
        let chain = Promise.resolve();
        const $ = (id) => document.getElementById(id);

        function say(text, info) { $("message").textContent = text || ""; $("message").className = info ? "info" : ""; }

        function queue() {
          if (!state) return [];
          return state.suggestions.filter((s) => !pending.has(s.path) && !skipped.has(s.path));
        }

        function show() {
          if (!state) return;
          $("forecast").textContent = state.forecast;
          $("status").textContent = state.status;
          $("labelled").textContent = state.labelled;
          $("keys").innerHTML = "";
          state.classes.forEach((c, i) => {
            const span = document.createElement("span");
            span.innerHTML = "<kbd>" + (i + 1) + "</kbd> ";
            span.append(c + " (" + state.counts[i] + ")");
            $("keys").append(span);
          });
          const extra = document.createElement("span");
          extra.innerHTML = "<kbd>u</kbd> undo <kbd>s</kbd> skip";
          $("keys").append(extra);
          const q = queue();
          const img = $("current");
          const path = q.length ? q[0].path : "";
          if (img.dataset.path !== path) {
            img.dataset.path = path;
            if (path) img.src = "/api/image?path=" + encodeURIComponent(path); else img.removeAttribute("src");
          }
          $("reason").textContent = q.length ? q[0].path + ": " + q[0].reason : (state.working ? "waiting for suggestions…" : "no suggestions");
          $("next").innerHTML = "";
          for (const s of q.slice(1, 5)) {
            const n = document.createElement("img");
            n.src = "/api/image?path=" + encodeURIComponent(s.path);
            n.title = s.path;
            $("next").append(n);
          }
        }

        async function refresh() {
          try {
            const r = await fetch("/api/state", { cache: "no-store" });
            state = await r.json();
            for (const p of [...pending]) if (!state.suggestions.some((s) => s.path === p)) pending.delete(p);
            if (state.notice) $("notice").textContent = state.notice;
            $("problem").textContent = state.problem || "";
            show();
          } catch (e) { say("the server does not answer (" + e + ")"); }
        }

        async function post(route, body) {
          const r = await fetch(route, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
          const text = await r.text();
          if (!r.ok) throw new Error(text.trim());
          return JSON.parse(text);
        }

        function label(key) {
          const q = queue();
          if (!q.length) { say("nothing to label"); return; }
          const path = q[0].path;
          if (state.classes[Number(key) - 1] !== undefined) { pending.add(path); show(); }
          chain = chain.then(async () => {
            try {
              const a = await post("/api/label", { path: path, key: key });
              history.push({ path: a.path, label: a.label, previous: a.previous });
              say("saved " + a.path + " as " + a.label, true);
              if (a.note) $("notice").textContent = a.note;
            } catch (e) { pending.delete(path); say(e.message); }
            await refresh();
          });
        }

        function undo() {
          chain = chain.then(async () => {
            const last = history.pop();
            if (!last) { say("nothing to undo in this tab"); return; }
            try {
              await post("/api/undo", last);
              pending.delete(last.path);
              skipped.delete(last.path);
              say("undid " + last.path + " (" + last.label + ")", true);
            } catch (e) { say(e.message); }
            await refresh();
          });
        }

        document.addEventListener("keydown", (ev) => {
          if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
          if (/^[0-9]$/.test(ev.key)) { label(ev.key); ev.preventDefault(); }
          else if (ev.key === "u") { undo(); ev.preventDefault(); }
          else if (ev.key === "s") {
            const q = queue();
            if (q.length) { skipped.add(q[0].path); say("skipped " + q[0].path, true); show(); }
            ev.preventDefault();
          }
        });
        refresh();
        setInterval(refresh, 1000);
        </script></body></html>
        """
}
