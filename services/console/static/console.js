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
  function chime() {
    // A short two-tone alert for a new urgent case, made here: no sound file to load.
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      var audio = new Context();
      [880, 660].forEach(function (frequency, i) {
        var tone = audio.createOscillator();
        var gain = audio.createGain();
        tone.frequency.value = frequency;
        gain.gain.value = 0.15;
        tone.connect(gain);
        gain.connect(audio.destination);
        tone.start(audio.currentTime + i * 0.25);
        tone.stop(audio.currentTime + i * 0.25 + 0.2);
      });
    } catch (ignored) { /* no sound before the person has touched the page: the banner still shows */ }
  }

  source.addEventListener("case", function (message) {
    var c = JSON.parse(message.data);
    var row = body.querySelector('tr[data-case="' + c.case_id + '"]');
    if (c.gone) {  // transferred out of this person's sight
      if (row) row.parentNode.removeChild(row);
      return;
    }
    if (c.overdue) {  // a deadline was missed just now
      if (row) {
        row.cells[8].innerHTML = '<b class="tag-overdue">逾期</b>';
        row.className += " overdue";
      }
      return;
    }
    if (row) {
      if (live.length && !fits(c.status)) {
        row.parentNode.removeChild(row);  // it moved to another tab
      } else {
        row.setAttribute("data-status", c.status);
        row.cells[6].textContent = c.status_label;
      }
    } else if (live.length && fits(c.status)) {
      var empty = body.querySelector("tr.empty");
      if (empty) empty.parentNode.removeChild(empty);
      body.insertAdjacentHTML("afterbegin", c.row);
      body.rows[0].className += " new";
    }
    if (c.urgent_new) { showBanner(c); chime(); }
  });
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) { toLogin(); return; }  // refused: the session ended
    indicator.className = "live down";
    indicator.textContent = "● 连接中断，正在重连…";
  };
})();

// Deadlines on a case page count down each second (the server rendered the first value).
(function () {
  "use strict";
  var clocks = document.querySelectorAll(".countdown[data-due]");
  if (!clocks.length) return;
  function words(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), rest = minutes % 60;
    var text = (days ? days + " 天 " : "") + (hours ? hours + " 小时 " : "") + rest + " 分";
    if (Math.abs(seconds) < 3600) text += " " + Math.floor(Math.abs(seconds) % 60) + " 秒";
    return (seconds >= 0 ? "剩余 " : "超时 ") + text;
  }
  function tick() {
    var now = Date.now();
    clocks.forEach(function (clock) {
      var left = (Date.parse(clock.getAttribute("data-due")) - now) / 1000;
      clock.textContent = words(left);
      if (left < 0) clock.className = "countdown late";
    });
  }
  tick();
  setInterval(tick, 1000);
})();
