// The cluster page as a photo tool: live sliders, a loupe with keys, verdicts in place with undo; and on a
// photo's row page, the photo first and its most similar photos. Without this script the page is a plain form.
(() => {
  "use strict";
  const KEYS = [
    ["← →", "previous / next photo"],
    ["↑ ↓", "previous / next cluster"],
    ["Enter", "open the photo large (the loupe)"],
    ["Space", "select or unselect the photo"],
    ["X", "this photo doesn't belong to its cluster"],
    ["K", "keep this photo: your choice for its cluster"],
    ["S", "the selected photos belong together"],
    ["D", "the two selected photos differ"],
    ["U", "undo the last verdict"],
    ["Esc", "close the loupe"],
    ["?", "show or hide these keys"],
  ];

  const el = (tag, props = {}, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  };
  const typing = (event) => /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName) && event.target.type !== "checkbox"
    && event.target.type !== "range";

  // Datasette closes every open <details> on a click outside it (its menus); the page's disclosures
  // (Advanced, cluster sizes, the dendrogram) stay as the user left them.
  const keepOpen = (details) => {
    if (details.dataset.kept) return;
    details.dataset.kept = "1";
    let wanted = details.open;
    details.querySelector("summary")?.addEventListener("click", () => { wanted = !details.open; });
    details.addEventListener("toggle", () => { if (details.open !== wanted) details.open = wanted; });
  };

  function clusterPage(page) {
    document.body.classList.add("imagecluster-js");
    const form = page.querySelector(".imagecluster-form");
    const countUrl = page.dataset.countUrl;
    const count = page.querySelector(".imagecluster-count");
    let counting = null;
    let countTimer = null;
    let loading = null;
    let lastVerdict = null;

    const query = () => {
      const params = new URLSearchParams();
      for (const [key, value] of new FormData(form)) {
        if (value !== "") params.append(key, value);
      }
      return params;
    };

    // -- live sliders: a count while dragging, the gallery on release, the URL following -------------------
    const showValues = () => {
      for (const name of ["sim", "alpha"]) {
        const input = form.elements[name];
        page.querySelector(`#${name}-value`).value = input.value;
        input.setAttribute("aria-valuetext", `${name} ${input.value}`);
      }
    };
    const liveCount = () => {
      if (counting) counting.abort();
      counting = new AbortController();
      count.textContent = "→ counting…";
      fetch(`${countUrl}?${query()}`, { signal: counting.signal, headers: { Accept: "application/json" } })
        .then((r) => r.json().then((data) => ({ status: r.status, data })))
        .then(({ status, data }) => {
          if (status === 202) count.textContent = "→ computing…";
          else if (status !== 200) count.textContent = `→ ${data.error || "not a valid setting"}`;
          else count.textContent = `→ ${data.clusters} cluster${data.clusters === 1 ? "" : "s"}, ${data.clustered} photos`;
        })
        .catch((e) => { if (e.name !== "AbortError") count.textContent = ""; });
    };
    form.addEventListener("input", (event) => {
      if (event.target.type !== "range") return;
      showValues();
      if (event.target.name === "sim") placeCut(Number(event.target.value));
      page.classList.add("imagecluster-stale");
      clearTimeout(countTimer);
      countTimer = setTimeout(liveCount, 80);
    });
    form.addEventListener("change", () => refresh(`${form.action}?${query()}`, { push: true }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      refresh(`${form.action}?${query()}`, { push: true });
    });
    window.addEventListener("popstate", () => refresh(location.href, { push: false, fromHistory: true }));

    // Load a state of the page and put its results in place of these: no reload, the scroll kept.
    async function refresh(url, { push = false, fromHistory = false, keep = null } = {}) {
      if (loading) loading.abort();
      loading = new AbortController();
      page.classList.add("imagecluster-stale");
      let response;
      try {
        response = await fetch(url, { signal: loading.signal, headers: { Accept: "text/html" } });
      } catch (e) {
        if (e.name !== "AbortError") count.textContent = "→ the server did not answer";
        return;
      }
      if (response.status === 202) {
        count.textContent = "→ computing the clusters…";
        const wait = 1000 * (Number(response.headers.get("Retry-After")) || 2);
        setTimeout(() => refresh(url, { push, fromHistory, keep }), wait);
        return;
      }
      const html = await response.text();
      const next = new DOMParser().parseFromString(html, "text/html").querySelector(".imagecluster-page");
      if (!next) { location.href = url; return; }
      const focused = keep || document.activeElement?.closest?.(".imagecluster-photo-cell")?.dataset.id;
      const onCut = !!document.activeElement?.closest?.(".imagecluster-cut");
      // The sizes and the dendrogram come back as the server makes them (closed): as the user left them instead.
      const open = [...page.querySelectorAll(".imagecluster-results details")].map((d) => [d.classList[0], d.open]);
      const report = page.querySelector(".imagecluster-report");
      for (const part of [".imagecluster-summary-line", ".imagecluster-results", ".imagecluster-error"]) {
        const mine = page.querySelector(part);
        const theirs = next.querySelector(part);
        if (mine && theirs) mine.replaceWith(theirs);
        else if (mine) mine.remove();
        else if (theirs && part === ".imagecluster-results") form.after(theirs);
        else if (theirs && part === ".imagecluster-error") form.after(theirs);
        else if (theirs) page.querySelector("h1").append(" ", theirs);
      }
      if (!fromHistory) {
        // Settings the server resolved (tuned defaults, clamped values) come back into the sliders.
        for (const name of ["sim", "alpha"]) {
          const theirs = next.querySelector(`.imagecluster-form [name=${name}]`);
          if (theirs) form.elements[name].value = theirs.value;
        }
      } else {
        next.querySelectorAll(".imagecluster-form [name]").forEach((theirs) => {
          if (form.elements[theirs.name]) form.elements[theirs.name].value = theirs.value;
        });
      }
      showValues();
      if (push && url !== location.href) history.pushState(null, "", url);
      page.classList.remove("imagecluster-stale");
      count.textContent = "";
      if (report && keep !== null) page.querySelector(".imagecluster-report")?.replaceWith(report);
      for (const [name, isOpen] of open) {
        const details = page.querySelector(`.imagecluster-results details.${name}`);
        if (details) details.open = isOpen;
      }
      wire();
      if (onCut) page.querySelector(".imagecluster-cut")?.focus({ preventScroll: true });
      if (focused) {
        const cell = page.querySelector(`.imagecluster-photo-cell[data-id="${focused}"] .imagecluster-photo-link`);
        if (cell) cell.focus({ preventScroll: true });
      }
    }

    // -- photos: selection, keys, the loupe ------------------------------------------------------------
    const cells = () => [...page.querySelectorAll(".imagecluster-photo-cell")];
    const verdictForm = () => page.querySelector(".imagecluster-verdict-form");
    const selected = () => cells().filter((c) => c.querySelector("input[type=checkbox]")?.checked);
    const showSelection = () => {
      for (const cell of cells()) {
        const box = cell.querySelector("input[type=checkbox]");
        cell.classList.toggle("imagecluster-selected", !!box?.checked);
      }
      const label = page.querySelector(".imagecluster-selected-count");
      const n = selected().length;
      if (label) label.textContent = n ? `${n} selected:` : "Select photos (Space, or the circle on a photo), then:";
    };
    const toggle = (cell) => {
      const box = cell?.querySelector("input[type=checkbox]");
      if (!box) return;
      box.checked = !box.checked;
      showSelection();
    };

    function wire() {
      page.querySelectorAll("details").forEach(keepOpen);
      for (const cell of cells()) {
        cell.querySelector("input[type=checkbox]")?.setAttribute("tabindex", "-1");
        cell.querySelector(".imagecluster-not")?.setAttribute("tabindex", "-1");
        cell.querySelector(".imagecluster-keep")?.setAttribute("tabindex", "-1");
      }
      showSelection();
    }

    page.addEventListener("click", (event) => {
      const link = event.target.closest(".imagecluster-photo-link");
      if (link && !event.metaKey && !event.ctrlKey && !event.shiftKey && event.button === 0) {
        event.preventDefault();
        loupe.open(link.closest(".imagecluster-photo-cell"));
      }
    });
    page.addEventListener("change", (event) => {
      if (event.target.matches(".imagecluster-photo-cell input[type=checkbox]")) showSelection();
    });
    page.addEventListener("submit", (event) => {
      if (!event.target.matches(".imagecluster-verdict-form")) return;
      event.preventDefault();
      const button = event.submitter;
      const fields = new FormData(event.target);
      if (button?.name) fields.set(button.name, button.value);
      post(button?.getAttribute("formaction") || event.target.action, fields);
    });

    const move = (cell, step) => {
      const all = cells();
      return all[Math.min(all.length - 1, Math.max(0, all.indexOf(cell) + step))];
    };
    const moveCluster = (cell, step) => {
      const cards = [...page.querySelectorAll(".imagecluster-card")];
      const card = cards[Math.min(cards.length - 1, Math.max(0, cards.indexOf(cell.closest(".imagecluster-card")) + step))];
      return card?.querySelector(".imagecluster-photo-cell") || cell;
    };
    const notThisOne = (cell) => {
      const button = cell?.querySelector(".imagecluster-not");
      if (!button) return;
      const fields = new FormData(verdictForm());
      fields.delete("id");
      fields.set("not", button.value);
      post(verdictForm().action, fields);
    };
    const keepThis = (cell) => {
      const button = cell?.querySelector(".imagecluster-keep");
      if (!button || !verdictForm()) return;
      const fields = new FormData(verdictForm());
      fields.delete("id");
      fields.set("keep", button.value);
      post(button.getAttribute("formaction"), fields);
    };
    const onSelected = (verdict) => {
      if (!verdictForm()) return;
      const fields = new FormData(verdictForm());
      fields.set("verdict", verdict);
      post(verdictForm().action, fields);
    };
    // One key handler for the grid (the focused photo) and the loupe (the photo shown).
    const act = (event, cell, go) => {
      const key = event.key;
      if (key === "ArrowRight" || key === "ArrowLeft") go(move(cell, key === "ArrowRight" ? 1 : -1));
      else if (key === "ArrowDown" || key === "ArrowUp") go(moveCluster(cell, key === "ArrowDown" ? 1 : -1));
      else if (key === " ") toggle(cell);
      else if (key === "x" || key === "X") notThisOne(cell);
      else if (key === "k" || key === "K") keepThis(cell);
      else if (key === "s" || key === "S") onSelected("same");
      else if (key === "d" || key === "D") onSelected("different");
      else if (key === "u" || key === "U") undo();
      else if (key === "?") keys.toggle();
      else return false;
      event.preventDefault();
      return true;
    };
    page.addEventListener("keydown", (event) => {
      if (typing(event) || event.altKey || event.ctrlKey || event.metaKey) return;
      const cell = event.target.closest?.(".imagecluster-photo-cell");
      if (cell && event.key === "Enter") {
        event.preventDefault();
        loupe.open(cell);
        return;
      }
      if (cell) act(event, cell, (c) => c?.querySelector(".imagecluster-photo-link").focus());
      else if (event.key === "?" || event.key === "u" || event.key === "U") act(event, null, () => {});
    });

    const keys = (() => {
      const list = el("dl", { className: "imagecluster-loupe-keys" });
      for (const [k, what] of KEYS) list.append(el("dt", {}, el("kbd", { textContent: k })), el("dd", { textContent: what }));
      const dialog = el("dialog", { className: "imagecluster-keys", ariaLabel: "Keys" },
        el("h2", { textContent: "Keys" }), list, el("button", { type: "button", textContent: "Close", onclick: () => dialog.close() }));
      document.body.append(dialog);
      return { toggle: () => (dialog.open ? dialog.close() : dialog.showModal()) };
    })();

    const loupe = (() => {
      const image = el("img", { alt: "" });
      const name = el("strong");
      const details = el("span");
      const path = el("span", { className: "imagecluster-loupe-path" });
      const place = el("span", { className: "imagecluster-loupe-place" });
      const button = (text, title, onclick) => el("button", { type: "button", textContent: text, title, ariaLabel: title, onclick });
      let current = null;
      const show = (cell) => {
        if (!cell) return;
        current = cell;
        const d = cell.dataset;
        image.src = d.preview;
        image.alt = cell.querySelector("img")?.alt || d.name;
        image.onerror = () => { image.onerror = null; image.src = cell.querySelector("img").src; };
        name.textContent = d.name;
        const kept = cell.querySelector(".imagecluster-keeper")?.title;
        details.textContent = [d.date, d.camera, kept ? `kept: ${kept}` : d.role === "rest" ? "another shot is kept" : ""]
          .filter(Boolean).join(" · ");
        path.textContent = d.path;
        const card = cell.closest(".imagecluster-card");
        place.textContent = `${d.place} in cluster ${card.dataset.number}`;
        select.textContent = cell.classList.contains("imagecluster-selected") ? "Unselect (Space)" : "Select (Space)";
      };
      const select = button("Select (Space)", "select or unselect this photo", () => { toggle(current); show(current); });
      const dialog = el("dialog", { className: "imagecluster-loupe", ariaLabel: "Photo" },
        el("div", { className: "imagecluster-loupe-inner" },
          el("figure", {}, image),
          el("div", { className: "imagecluster-loupe-bar" },
            button("‹", "previous photo (←)", () => show(move(current, -1))),
            button("›", "next photo (→)", () => show(move(current, 1))),
            el("span", { className: "imagecluster-loupe-caption" }, name, " ", details, " · ", place, path),
            verdictForm() ? select : null,
            verdictForm() ? button("Doesn't belong (X)", "this photo doesn't belong to its cluster (X)", () => notThisOne(current)) : null,
            page.querySelector(".imagecluster-keep") ? button("Keep this one (K)", "keep this photo: your choice for its cluster (K)", () => keepThis(current)) : null,
            button("?", "keys (?)", () => keys.toggle()),
            button("Close (Esc)", "close (Esc)", () => dialog.close()))));
      dialog.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === "Escape") return;
        if (act(event, current, (c) => show(c))) show(current);
      });
      dialog.addEventListener("close", () => current?.querySelector(".imagecluster-photo-link")?.focus());
      document.body.append(dialog);
      return {
        open: (cell) => { show(cell); if (!dialog.open) dialog.showModal(); },
        refresh: () => {
          if (!dialog.open || !current) return;
          const again = page.querySelector(`.imagecluster-photo-cell[data-id="${current.dataset.id}"]`);
          if (again) show(again); else dialog.close();
        },
      };
    })();

    // -- the dendrogram: the cut follows the sim slider and moves it (drag, click, arrow keys); a leaf whose
    // photo is on the page opens it in the loupe ------------------------------------------------------
    const tree = () => page.querySelector(".imagecluster-dendrogram");
    // Heights on the server's square-root axis (web/dendrogram.py, Axis): y from a sim's cut, a sim from y.
    const yOf = (d, sim) => {
      const height = Math.min(Math.max(Number(d.dmax) * (1 - sim), 0), Number(d.top));
      return Number(d.base) - Math.sqrt(height / Number(d.top)) * Number(d.span);
    };
    const placeCut = (sim) => {
      const svg = tree();
      if (!svg) return;
      const cut = svg.querySelector(".imagecluster-cut");
      cut.setAttribute("transform", `translate(0 ${(yOf(svg.dataset, sim) - Number(svg.dataset.cut)).toFixed(1)})`);
      cut.setAttribute("aria-valuenow", (1 - sim).toFixed(2));
      cut.setAttribute("aria-valuetext", `sim ${sim}`);
      cut.querySelector("text").textContent = `cut at sim ${sim}`;
    };
    const simAt = (svg, clientY) => {
      const d = svg.dataset;
      const y = new DOMPoint(0, clientY).matrixTransform(svg.getScreenCTM().inverse()).y;
      const share = Math.min(1, Math.max(0, (Number(d.base) - y) / Number(d.span)));
      const height = Number(d.top) * share * share;
      return Math.round(Math.min(1, Math.max(0, 1 - height / Number(d.dmax))) * 100) / 100;
    };
    const setSim = (sim, done) => {
      const input = form.elements.sim;
      input.value = String(sim); // the range snaps it to its step
      input.dispatchEvent(new Event("input", { bubbles: true }));
      if (done) input.dispatchEvent(new Event("change", { bubbles: true }));
    };
    page.addEventListener("pointerdown", (event) => {
      const svg = event.target.closest?.(".imagecluster-dendrogram");
      if (!svg || event.button !== 0 || event.target.closest(".imagecluster-leaf")) return;
      // A finger away from the cut scrolls the page, as elsewhere; the mouse moves the cut from anywhere.
      if (event.pointerType === "touch" && !event.target.closest(".imagecluster-cut")) return;
      event.preventDefault();
      const cut = svg.querySelector(".imagecluster-cut");
      cut.focus({ preventScroll: true });
      svg.setPointerCapture(event.pointerId);
      const follow = (e) => setSim(simAt(svg, e.clientY), false);
      const end = (e) => {
        svg.removeEventListener("pointermove", follow);
        svg.removeEventListener("pointerup", end);
        svg.removeEventListener("pointercancel", end);
        setSim(e.type === "pointerup" ? simAt(svg, e.clientY) : Number(form.elements.sim.value), true);
      };
      svg.addEventListener("pointermove", follow);
      svg.addEventListener("pointerup", end);
      svg.addEventListener("pointercancel", end);
      follow(event);
    });
    page.addEventListener("keydown", (event) => {
      if (!event.target.closest?.(".imagecluster-cut") || event.altKey || event.ctrlKey || event.metaKey) return;
      const input = form.elements.sim;
      const step = { ArrowUp: -1, ArrowRight: -1, ArrowDown: 1, ArrowLeft: 1, PageUp: -10, PageDown: 10 }[event.key];
      const sim = event.key === "Home" ? 1 : event.key === "End" ? 0
        : step ? Number(input.value) + step * Number(input.step || 0.01) : null;
      if (sim === null) return;
      event.preventDefault();
      setSim(Math.round(Math.min(1, Math.max(0, sim)) * 100) / 100, true);
    });
    page.addEventListener("click", (event) => {
      const leaf = event.target.closest?.(".imagecluster-leaf");
      if (!leaf || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      const cell = page.querySelector(`.imagecluster-photo-cell[data-id="${leaf.dataset.id}"]`);
      if (!cell) return; // not on this page: its row page
      event.preventDefault();
      cell.scrollIntoView({ block: "center" });
      loupe.open(cell);
    });

    // -- verdicts in place: what was recorded, what it changed, undo ------------------------------------
    const report = (data) => {
      const box = page.querySelector(".imagecluster-report");
      if (!box) return;
      box.replaceChildren();
      const line = el("p", {}, data.message + " ");
      for (const photo of data.photos || []) {
        line.append(el("span", { className: "imagecluster-named" }, el("img", { src: photo.thumbnail, alt: "" }), ` ${photo.name} `));
      }
      box.append(line);
      for (const change of data.changes || []) box.append(el("p", { textContent: change }));
      if (data.undo) {
        lastVerdict = data.undo;
        box.append(el("button", { type: "button", textContent: "Undo (U)", onclick: undo }));
      }
    };
    async function post(url, fields) {
      fields.set("next", location.pathname + location.search);
      const keep = document.activeElement?.closest?.(".imagecluster-photo-cell")?.dataset.id || null;
      const response = await fetch(url, { method: "POST", body: new URLSearchParams(fields), headers: { Accept: "application/json" } });
      const data = await response.json().catch(() => ({ ok: false, message: `The server answered ${response.status}` }));
      if (!data.ok) data.message = data.message || data.error || "Not recorded";
      report(data);
      if (data.ok) await refresh(location.href, { keep: keep ?? "" });
      loupe.refresh();
    }
    async function undo() {
      const form = verdictForm();
      if (!lastVerdict || !form) return;
      const fields = new FormData();
      fields.set("csrftoken", form.elements.csrftoken.value);
      fields.set("undo", lastVerdict);
      lastVerdict = null;
      await post(form.dataset.undoUrl, fields);
    }

    wire();
  }

  function rowPage(similar) {
    fetch(similar.dataset.imageclusterSimilar)
      .then((r) => (r.ok ? r.json() : { similar: [] }))
      .then((data) => {
        if (data.thumbnail) {
          // The photo and its capture time first, above the row's table.
          const photo = el("figure", { className: "imagecluster-row-photo" },
            el("img", { src: data.preview || data.thumbnail, alt: data.alt || data.name || "the photo", className: "imagecluster-photo",
              onerror() { this.onerror = null; this.src = data.thumbnail; } }),
            el("figcaption", {}, el("strong", { textContent: data.name || "" }), data.date ? ` · ${data.date}` : "",
              data.camera ? ` · ${data.camera}` : ""));
          const heading = document.querySelector(".content h1, main h1, h1");
          (heading || similar).after(photo);
        }
        if (!data.similar.length) return;
        similar.append(el("h2", { textContent: "Most similar photos" }));
        const row = el("div", { className: "imagecluster-thumbs" });
        for (const item of data.similar) {
          row.append(el("figure", {},
            el("a", { href: item.url, title: `${item.name}${item.date ? " · " + item.date : ""}` },
              el("img", { src: item.thumbnail, loading: "lazy", alt: `${item.name}, similarity ${item.similarity}` })),
            el("figcaption", { textContent: `similarity ${item.similarity}` })));
        }
        similar.append(row);
      });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector(".imagecluster-page[data-count-url]");
    if (page) clusterPage(page);
    const similar = document.querySelector("[data-imagecluster-similar]");
    if (similar) rowPage(similar);
  });
})();
