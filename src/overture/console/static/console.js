// The console's own script: live checking, previews without reloading, copy buttons,
// confirmations. Every form works without it.
"use strict";
(function () {
  const csrf = () => (document.querySelector("main[data-csrf]") || {}).dataset?.csrf || "";

  function showErrors(form, errors) {
    form.querySelectorAll("[data-field]").forEach((box) => {
      const name = box.dataset.field;
      const list = errors[name] || [];
      const out = box.querySelector(".errors");
      if (!out) return;
      out.replaceChildren(...list.map((text) => {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = text;
        return p;
      }));
      box.classList.toggle("invalid", list.length > 0);
      const input = box.querySelector("input, textarea, select");
      if (input) {
        if (list.length) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
    });
    const general = form.querySelector(".errors.general");
    if (general) {
      const list = errors[""] || [];
      general.replaceChildren(...list.map((text) => {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = text;
        return p;
      }));
    }
  }

  // Live checking: the form is checked by the server as it is typed (the same checks a
  // save runs), and each problem is shown beside its field.
  document.querySelectorAll("form[data-check-url]").forEach((form) => {
    let timer = null;
    let sequence = 0;
    const check = async () => {
      const mine = ++sequence;
      const body = new FormData(form);
      body.delete("version");
      try {
        const response = await fetch(form.dataset.checkUrl, {
          method: "POST",
          body,
          headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok || mine !== sequence) return;
        const answer = await response.json();
        showErrors(form, answer.errors || {});
        form.dataset.checked = String(mine);
      } catch (e) { /* offline for a moment: the save will say */ }
    };
    form.addEventListener("input", (event) => {
      if (!event.target.name || event.target.name.startsWith("_preview")) return;
      clearTimeout(timer);
      timer = setTimeout(check, 350);
    });
    form.addEventListener("change", (event) => {
      if (event.target.name === "kind") showPolicyFields(form);
    });
    showPolicyFields(form);
  });

  // Policies: show the fields of the chosen kind of policy only.
  function showPolicyFields(form) {
    const kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    form.querySelectorAll("[data-only]").forEach((box) => {
      box.hidden = !box.dataset.only.split(" ").includes(kind.value);
    });
  }

  // Preview: render the content in place.
  document.querySelectorAll("button[data-preview]").forEach((button) => {
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      const form = button.form;
      const out = document.getElementById("preview-result");
      const errors = document.getElementById("e-_preview");
      out.classList.add("checking");
      const response = await fetch(button.formAction, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
        credentials: "same-origin",
      });
      out.classList.remove("checking");
      if (!response.ok && response.status !== 422) { errors.textContent = "The preview failed (" + response.status + ")."; return; }
      const answer = await response.json();
      const problems = [...(answer.errors?._preview || []), ...(answer.errors?.[""] || [])];
      for (const [name, list] of Object.entries(answer.errors || {})) {
        if (name && name !== "_preview") problems.push(name + ": " + list.join("; "));
      }
      errors.replaceChildren(...problems.map((t) => { const p = document.createElement("p"); p.className = "error"; p.textContent = t; return p; }));
      out.replaceChildren();
      for (const [placement, content] of Object.entries(answer.preview || {})) {
        const section = document.createElement("section");
        section.className = "rendered";
        const h = document.createElement("h3");
        h.textContent = placement;
        section.append(h);
        if (typeof content === "string") {
          const p = document.createElement("p"); p.className = "error"; p.textContent = content; section.append(p);
        } else {
          const dl = document.createElement("dl");
          for (const [name, text] of Object.entries(content)) {
            const dt = document.createElement("dt"); dt.textContent = name;
            const dd = document.createElement("dd"); dd.textContent = text;
            dl.append(dt, dd);
          }
          section.append(dl);
        }
        out.append(section);
      }
    });
  });

  // Copy buttons.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const target = button.dataset.copy ? document.querySelector(button.dataset.copy) : button.parentElement.querySelector("code");
      try { await navigator.clipboard.writeText(target.textContent); button.textContent = "Copied"; }
      catch (e) { const range = document.createRange(); range.selectNodeContents(target); getSelection().removeAllRanges(); getSelection().addRange(range); }
    });
  });

  // A choice that changes what the page offers (an environment's placements): reload with it.
  document.querySelectorAll("select[data-reload]").forEach((select) => {
    select.addEventListener("change", () => {
      const query = new URLSearchParams(location.search);
      query.set(select.dataset.reload, select.value);
      location.search = query.toString();
    });
  });

  // Charts: plotly.js from the plotly package, served by the console; the data is in a
  // JSON block beside the chart, the numbers in the table below it.
  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart]").forEach((box) => {
      const data = JSON.parse(document.getElementById(box.dataset.chart).textContent);
      if (!data.x.length) { box.textContent = "No data in this period."; return; }
      const layout = { margin: { t: 20, r: 50, b: 60, l: 50 }, height: 320, legend: { orientation: "h" },
        yaxis: { title: "count" }, yaxis2: { title: "rate %", overlaying: "y", side: "right", rangemode: "tozero" },
        shapes: [], annotations: [] };
      let traces;
      if (data.time) {
        // A day or an hour per point: ticks and bars of that size, and the axis at least
        // three of them wide (with one point, plotly zoomed to milliseconds).
        const daily = data.x[0].length === 10;
        const unit = daily ? 86400000 : 3600000;
        // (days: "2026-12-06"; hours: "2026-12-06T08:00")
        const toMs = (x) => Date.parse((daily ? x + "T00:00" : x.slice(0, 13) + ":00") + ":00Z");
        const first = toMs(data.x[0]), last = toMs(data.x[data.x.length - 1]);
        const iso = (ms) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
        layout.xaxis = { type: "date", tickformat: daily ? "%b %-d" : "%b %-d %H:00" };
        if (!Number.isNaN(first) && !Number.isNaN(last)) {
          layout.xaxis.range = [iso(first - unit), iso(last + unit)];
          layout.xaxis.dtick = daily || last - first < 86400000 ? unit : unit * 6;
        }
        const bar = { type: "bar", width: unit / 4 };
        traces = [
          { ...bar, x: data.x, y: data.propositions, name: "proposed" },
          { ...bar, x: data.x, y: data.presented, name: "presented" },
          { ...bar, x: data.x, y: data.accepted, name: "accepted" },
          { x: data.x, y: data.rate, name: "rate %", type: "scatter", mode: "lines+markers", yaxis: "y2" },
        ];
        for (const d of data.deployments) {
          const at = d.at.slice(0, data.x[0].length === 10 ? 10 : 13).replace(" ", "T");
          const x = data.x[0].length === 10 ? at : at + ":00";
          layout.shapes.push({ type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { dash: "dot", width: 1 } });
          layout.annotations.push({ x, yref: "paper", y: 1, text: "#" + d.number, showarrow: false });
        }
      } else {
        const errors = data.rate.map((r, i) => (r === null ? null : data.high[i] - r));
        const below = data.rate.map((r, i) => (r === null ? null : r - data.low[i]));
        traces = [{ x: data.x, y: data.rate, name: "rate %", type: "bar",
          error_y: { type: "data", array: errors, arrayminus: below, visible: true } }];
        layout.yaxis = { title: "acceptance rate % (95% interval)", rangemode: "tozero" };
        delete layout.yaxis2;
      }
      window.Plotly.newPlot(box, traces, layout, { displaylogo: false, responsive: true });
    });
  }
  if (document.querySelector("[data-chart]")) window.addEventListener("load", drawCharts);

  // Confirm before what cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
