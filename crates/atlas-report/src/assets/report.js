// clip-atlas report: group-by recolouring, sortable summary table, tooltips. No network.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("atlas-data").textContent);
  var entries = data.entries, palette = data.palette;
  var factorIndex = {};
  data.factors.forEach(function (f, i) { factorIndex[f[0]] = i; });

  function groupsOf(factor) {
    var k = factorIndex[factor], names = [], of = [];
    entries.forEach(function (e) {
      var v = e.t[k], g = names.indexOf(v);
      if (g < 0) { names.push(v); g = names.length - 1; }
      of.push(g);
    });
    return { names: names, of: of };
  }
  function colour(g) { return palette[g % palette.length]; }

  var current = null;
  function colourBy(factor) {
    var gr = groupsOf(factor);
    current = { factor: factor, groups: gr };
    document.querySelectorAll("[data-e]").forEach(function (el) {
      var c = colour(gr.of[+el.getAttribute("data-e")]);
      if (el.classList.contains("pt")) el.setAttribute("fill", c);
      else if (el.classList.contains("ln") || el.classList.contains("ci")) el.setAttribute("stroke", c);
      else if (el.tagName === "TR") {
        var dot = el.querySelector("i.dot");
        if (dot) dot.style.background = c;
      }
    });
    var legend = document.getElementById("legend");
    legend.textContent = "";
    gr.names.forEach(function (name, g) {
      var span = document.createElement("span");
      span.className = "key";
      span.setAttribute("data-g", String(g));
      var i = document.createElement("i");
      i.style.background = colour(g);
      span.appendChild(i);
      span.appendChild(document.createTextNode(name));
      legend.appendChild(span);
    });
  }
  var select = document.getElementById("groupby");
  select.addEventListener("change", function () { colourBy(select.value); });
  colourBy(select.value || data["default"]);

  // Sortable summary table.
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead tr:last-child th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var desc = !th.classList.contains("desc");
        heads.forEach(function (h) { h.classList.remove("asc", "desc"); });
        th.classList.add(desc ? "desc" : "asc");
        var numeric = th.getAttribute("data-k") === "n";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var ca = a.cells[col], cb = b.cells[col];
          if (numeric) {
            var va = ca.getAttribute("data-v"), vb = cb.getAttribute("data-v");
            if (va === "" && vb === "") return 0;
            if (va === "") return 1;
            if (vb === "") return -1;
            return desc ? vb - va : va - vb;
          }
          var r = ca.textContent.localeCompare(cb.textContent);
          return desc ? -r : r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });

  // Tooltips and highlighting of one entry across every plot.
  var tip = document.getElementById("tip");
  function fmt(v, f) {
    if (v === null || v === undefined || v === "") return "n/a";
    var x = +v;
    return f === "p" ? (x * 100).toFixed(1) + "%" : x.toFixed(3);
  }
  function withCi(el, axis) {
    var f = el.getAttribute("data-f" + axis);
    var s = fmt(el.getAttribute("data-" + axis), f);
    var lo = el.getAttribute("data-" + axis + "l"), hi = el.getAttribute("data-" + axis + "u");
    if (lo !== null && hi !== null) s += " [" + fmt(lo, f) + ", " + fmt(hi, f) + "]";
    return s;
  }
  function label(svg, cls) {
    var t = svg.querySelector(cls);
    return t ? t.textContent : "";
  }
  function highlight(e, on) {
    document.querySelectorAll('svg [data-e="' + e + '"]').forEach(function (el) {
      el.classList.toggle("hl", on);
    });
  }
  document.addEventListener("mouseover", function (ev) {
    var el = ev.target;
    if (!el.getAttribute || el.getAttribute("data-e") === null || el.tagName === "TR") return;
    var e = +el.getAttribute("data-e"), ent = entries[e];
    var svg = el.ownerSVGElement;
    var lines = ["<b>" + escapeHtml(ent.m) + "</b>" + (ent.p ? " [" + escapeHtml(ent.p) + "]" : "")];
    if (current) lines.push(escapeHtml(data.factors[factorIndex[current.factor]][1] + ": " + ent.t[factorIndex[current.factor]]));
    if (el.getAttribute("data-c") !== null) {
      lines.push(escapeHtml(el.getAttribute("data-c")) + ": " + withCi(el, "x"));
    } else if (el.classList.contains("ln")) {
      lines.push(escapeHtml(label(svg, ".ptitle")) + " · " + el.getAttribute("data-pts").split(" ").length + " bins");
    } else {
      lines.push(escapeHtml(label(svg, ".xlabel")) + ": " + withCi(el, "x"));
      lines.push(escapeHtml(label(svg, ".ylabel")) + ": " + withCi(el, "y"));
    }
    if (ent.x > 0) lines.push("⚠ " + ent.x + " items failed to embed");
    tip.innerHTML = lines.join("<br>");
    tip.hidden = false;
    highlight(e, true);
  });
  document.addEventListener("mousemove", function (ev) {
    if (tip.hidden) return;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) x = ev.clientX - tip.offsetWidth - 10;
    if (y + tip.offsetHeight > window.innerHeight) y = ev.clientY - tip.offsetHeight - 10;
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  });
  document.addEventListener("mouseout", function (ev) {
    var el = ev.target;
    if (!el.getAttribute || el.getAttribute("data-e") === null || el.tagName === "TR") return;
    tip.hidden = true;
    highlight(+el.getAttribute("data-e"), false);
  });
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
})();
