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

// 定位: a click on the map of one's area becomes the point's latitude and longitude (the map is
// drawn in Web-Mercator pixels at the zoom and offset it carries), marked where it was clicked; a
// point typed in (or the phone's position, put in by the mobile page) is marked too, and the frame
// says whether it fell outside the map (class "outside").
(function () {
  "use strict";
  var frame = document.getElementById("pick");
  var map = frame && frame.querySelector("svg.map");
  if (!map) return;
  var zoom = +map.getAttribute("data-zoom"), left = +map.getAttribute("data-left"), top = +map.getAttribute("data-top");
  var size = 256 * Math.pow(2, zoom), view = map.viewBox.baseVal;
  var lat = document.getElementById("lat"), lng = document.getElementById("lng");
  var marker = null;
  function mark(x, y) {
    if (!marker) {
      marker = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      marker.setAttribute("r", "7");
      marker.setAttribute("class", "picked");
      map.appendChild(marker);
    }
    marker.setAttribute("cx", x);
    marker.setAttribute("cy", y);
    frame.classList.toggle("outside", x < 0 || y < 0 || x > view.width || y > view.height);
  }
  map.style.cursor = "crosshair";
  map.addEventListener("click", function (event) {
    var point = map.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var local = point.matrixTransform(map.getScreenCTM().inverse());
    var x = left + local.x, y = top + local.y;
    lng.value = (x / size * 360 - 180).toFixed(6);
    lat.value = (Math.atan(Math.sinh(Math.PI * (1 - 2 * y / size))) * 180 / Math.PI).toFixed(6);
    mark(local.x, local.y);
  });
  function typed() {
    var la = parseFloat(lat.value), ln = parseFloat(lng.value);
    if (isNaN(la) || isNaN(ln)) return;
    var sin = Math.sin(Math.max(Math.min(la, 85), -85) * Math.PI / 180);
    mark((ln + 180) / 360 * size - left, (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * size - top);
  }
  lat.addEventListener("change", typed);
  lng.addEventListener("change", typed);
  typed();  // a point sent back with a refusal is shown again
})();
