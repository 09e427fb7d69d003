/* Sorting and filtering for the report's tables (inlined; no network, no library).
   Every row is in the HTML: without script the tables read as they are. The script moves and
   reads text, never builds markup from it (no innerHTML), so portal text stays text. */
(function () {
  "use strict";

  function key(cell) {
    if (!cell) { return ""; }
    var sort = cell.getAttribute("data-sort");
    return (sort === null ? cell.textContent : sort).trim();
  }

  function numeric(values) {
    var filled = values.filter(function (v) { return v !== ""; });
    return filled.length > 0 && filled.every(function (v) { return !isNaN(Number(v)); });
  }

  function sortBy(table, column, button) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var header = button.parentNode;
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var keys = rows.map(function (row) { return key(row.cells[column]); });
    var asNumbers = numeric(keys);
    var order = rows.map(function (row, index) { return { row: row, key: keys[index], index: index }; });
    order.sort(function (a, b) {
      // Empty cells go last in either direction.
      if (a.key === "" || b.key === "") {
        return (a.key === "") - (b.key === "") || a.index - b.index;
      }
      var compared = asNumbers ? Number(a.key) - Number(b.key)
        : a.key.localeCompare(b.key, undefined, { sensitivity: "base", numeric: true });
      return (ascending ? compared : -compared) || a.index - b.index;
    });
    order.forEach(function (item) { body.appendChild(item.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (header.firstChild) { button.appendChild(header.firstChild); }
      var hint = document.createElement("span");
      hint.className = "visually-hidden";
      hint.textContent = " (sort)";
      button.appendChild(hint);
      header.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, column, button); });
    });
  }

  var filters = 0;
  function makeFilterable(table) {
    var body = table.tBodies[0];
    if (!body) { return; }
    filters += 1;
    var id = "filter-" + filters;
    var tools = document.createElement("div");
    tools.className = "table-tools";
    var label = document.createElement("label");
    label.setAttribute("for", id);
    // Our template's words (data-filter-label), never portal text.
    label.textContent = table.getAttribute("data-filter-label") || "Filter by dataset or agency";
    var input = document.createElement("input");
    input.type = "search";
    input.id = id;
    if (table.id) { input.setAttribute("aria-controls", table.id); }
    var status = document.createElement("p");
    status.className = "filter-status";
    status.setAttribute("role", "status");
    tools.appendChild(label);
    tools.appendChild(input);
    tools.appendChild(status);
    var box = table.parentNode.classList.contains("scroll") ? table.parentNode : table;
    box.parentNode.insertBefore(tools, box);

    function text(row) {
      var cells = row.querySelectorAll("[data-filter]");
      var source = cells.length ? Array.prototype.slice.call(cells) : [row];
      return source.map(function (cell) { return cell.textContent; }).join(" ").toLowerCase();
    }
    function apply() {
      var wanted = input.value.trim().toLowerCase();
      var rows = Array.prototype.slice.call(body.rows);
      var shown = 0;
      rows.forEach(function (row) {
        var match = wanted === "" || text(row).indexOf(wanted) !== -1;
        row.hidden = !match;
        if (match) { shown += 1; }
      });
      status.textContent = "Showing " + shown + " of " + rows.length + " rows.";
    }
    input.addEventListener("input", apply);
    apply();
  }

  Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"), makeSortable);
  Array.prototype.forEach.call(document.querySelectorAll("table[data-filterable]"), makeFilterable);
}());
