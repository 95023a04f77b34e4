// GridLink console: the live queue. New and changed cases arrive as server-sent events from the
// console itself (/events); rows are rendered by the server, this script only places them.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table || !window.EventSource) return;
  var live = JSON.parse(table.getAttribute("data-live") || "[]");
  var body = table.tBodies[0];
  var banner = document.getElementById("banner");
  var indicator = document.getElementById("live");
  var source = new EventSource("/events");

  function toLogin() {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
  }

  function fits(status) {
    return live.indexOf("*") >= 0 || live.indexOf(status) >= 0;
  }

  function showBanner(c) {
    banner.textContent = "新的紧急案件：" + c.case_no + "（" + c.category_name + "） ";
    var link = document.createElement("a");
    link.href = "/cases/" + c.case_id;
    link.textContent = "立即查看";
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "知道了";
    close.onclick = function () { banner.hidden = true; };
    banner.appendChild(link);
    banner.appendChild(close);
    banner.hidden = false;
  }

  source.addEventListener("ready", function () { indicator.className = "live"; indicator.textContent = "● 实时"; });
  source.addEventListener("expired", function () { source.close(); toLogin(); });
  source.addEventListener("case", function (message) {
    var c = JSON.parse(message.data);
    var row = body.querySelector('tr[data-case="' + c.case_id + '"]');
    if (row) {
      if (live.length && !fits(c.status)) {
        row.parentNode.removeChild(row);  // it moved to another tab
      } else {
        row.setAttribute("data-status", c.status);
        row.cells[5].textContent = c.status_label;
      }
    } else if (live.length && fits(c.status)) {
      var empty = body.querySelector("tr.empty");
      if (empty) empty.parentNode.removeChild(empty);
      body.insertAdjacentHTML("afterbegin", c.row);
      body.rows[0].className += " new";
    }
    if (c.urgent_new) showBanner(c);
  });
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) { toLogin(); return; }  // refused: the session ended
    indicator.className = "live down";
    indicator.textContent = "● 连接中断，正在重连…";
  };
})();
