// GridLink mobile work page: the phone's position (navigator.geolocation, WGS-84) goes with each
// photo and action as evidence metadata (现场核实 keeps it). Without it (refused, no signal)
// everything still works.
(function () {
  "use strict";
  var status = document.querySelectorAll(".geo-status");
  function say(text) { for (var i = 0; i < status.length; i++) status[i].textContent = text; }
  function fill(cls, value) {
    var inputs = document.querySelectorAll("input." + cls);
    for (var i = 0; i < inputs.length; i++) inputs[i].value = value;
  }
  if (!document.querySelector("input.geo-lat")) return;
  if (!navigator.geolocation) { say("此手机不提供位置，将不带位置提交。"); return; }
  navigator.geolocation.getCurrentPosition(function (p) {
    fill("geo-lat", p.coords.latitude.toFixed(6));
    fill("geo-lng", p.coords.longitude.toFixed(6));
    fill("geo-accuracy", Math.round(p.coords.accuracy));
    say("已获取手机位置（误差约 " + Math.round(p.coords.accuracy) + " 米），将随照片和核实一并保存。");
  }, function () {
    say("未能获取手机位置，将不带位置提交（可在手机设置中允许企业微信使用位置）。");
  }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
})();

// A phone's photo is often several MB, more than the console takes in one form (1 MB): a photo
// over SHRINK_ABOVE is redrawn at most MAX_SIDE px on its long side as JPEG before it is sent.
// Smaller photos go as taken, with their EXIF; the phone's position goes with either.
(function () {
  "use strict";
  var SHRINK_ABOVE = 900 * 1024, MAX_SIDE = 1600;
  if (!window.DataTransfer || !window.createImageBitmap || !HTMLCanvasElement.prototype.toBlob) return;

  function redraw(file) {
    if (file.size <= SHRINK_ABOVE || !/^image\//.test(file.type)) return Promise.resolve(file);
    return createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (done) {
        canvas.toBlob(function (blob) {
          done(new File([blob], file.name.replace(/\.[^.]*$/, "") + ".jpg", { type: "image/jpeg" }));
        }, "image/jpeg", 0.85);
      });
    }).catch(function () { return file; });
  }

  var inputs = document.querySelectorAll('input[type=file][accept^="image"]');
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("change", function (event) {
      var input = event.target, form = input.form, files = Array.prototype.slice.call(input.files || []);
      if (!files.some(function (f) { return f.size > SHRINK_ABOVE; })) return;
      form.setAttribute("data-busy", "1");
      Promise.all(files.map(redraw)).then(function (ready) {
        var list = new DataTransfer();
        ready.forEach(function (f) { list.items.add(f); });
        input.files = list.files;
        form.removeAttribute("data-busy");
        if (form.getAttribute("data-send")) { form.removeAttribute("data-send"); form.submit(); }
      });
    });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.getAttribute("data-busy")) return;
    event.preventDefault();  // still redrawing the photo: sent as soon as it is ready
    form.setAttribute("data-send", "1");
  }, true);
})();

// 定位 on the phone: 「用我的位置」 puts the phone's position (WGS-84; the grid worker stands at the
// place) into the form and on the map. Asked only on the tap, so the phone's permission prompt
// comes when the person expects it; a refusal says how to allow it, or to pick on the map instead.
(function () {
  "use strict";
  var button = document.getElementById("use-my-position");
  if (!button) return;
  var section = document.getElementById("locate"), status = document.getElementById("position-status");
  var lat = document.getElementById("lat"), lng = document.getElementById("lng");
  function say(text, bad) { status.textContent = text; status.className = bad ? "error" : "done"; }
  function bound(name) { return parseFloat(section.getAttribute("data-" + name)); }
  button.addEventListener("click", function () {
    if (!navigator.geolocation) {
      say("此手机（或浏览器）不能提供位置。请在下方地图上点出位置。", true);
      return;
    }
    button.disabled = true;
    say("正在获取手机位置……", false);
    navigator.geolocation.getCurrentPosition(function (p) {
      button.disabled = false;
      var la = p.coords.latitude, ln = p.coords.longitude, accuracy = Math.round(p.coords.accuracy);
      if (la < bound("south") || la > bound("north") || ln < bound("west") || ln > bound("east")) {
        say("您现在的位置（" + la.toFixed(5) + ", " + ln.toFixed(5) + "）不在" + section.getAttribute("data-county") +
          "范围内，不能定位到这里。请到上报的现场后再点「用我的位置」，或在下方地图上点出位置。", true);
        return;
      }
      lat.value = la.toFixed(6);
      lng.value = ln.toFixed(6);
      lat.dispatchEvent(new Event("change"));
      var stale = document.getElementById("locate-alert");  // the refusal of an earlier point
      if (stale) stale.hidden = true;
      var words = "已填入您的位置（误差约 " + accuracy + " 米），地图上已标出。";
      if (document.getElementById("pick").classList.contains("outside")) {
        say(words + "但它不在您负责区域的地图内：请确认您在上报的现场，或在地图上点出位置。", true);
      } else if (accuracy > 100) {
        say(words + "误差较大，请核对地图上的标记，必要时在地图上点选修正，再点「确认位置」。", true);
      } else {
        say(words + "核对无误后点「确认位置」。", false);
      }
    }, function (error) {
      button.disabled = false;
      if (error.code === 1) {
        say("手机没有允许获取位置。请在手机「设置」里允许企业微信使用位置信息（并打开定位服务），" +
          "再点「用我的位置」并在询问时选「允许」；也可以直接在下方地图上点出位置。", true);
      } else if (error.code === 3) {
        say("获取位置超时。请到开阔处再点「用我的位置」，或在下方地图上点出位置。", true);
      } else {
        say("暂时无法获取位置（定位服务未打开或信号弱）。请打开手机的定位服务后再试，或在下方地图上点出位置。", true);
      }
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 0 });
  });
})();
