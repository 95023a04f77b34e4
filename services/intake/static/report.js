// 我要反映: the report and its photos in one multipart request to intake.
// Plain ES5 + fetch, which WeChat's in-app browser supports.
(function () {
  var config = JSON.parse(document.getElementById("config").textContent);
  var form = document.getElementById("report-form");
  var errorBox = document.getElementById("error");
  var place = null; // {lat, lng, coord_system}

  function showError(text) { errorBox.textContent = text; }

  document.getElementById("photos").addEventListener("change", function (e) {
    var box = document.getElementById("previews");
    box.innerHTML = "";
    var files = e.target.files;
    for (var i = 0; i < files.length && i < 9; i++) {
      var img = document.createElement("img");
      img.src = URL.createObjectURL(files[i]);
      box.appendChild(img);
    }
  });

  document.getElementById("locate").addEventListener("click", function () {
    var text = document.getElementById("location-text");
    if (!navigator.geolocation) { text.textContent = "当前浏览器不支持定位，请填写详细地址。"; return; }
    text.textContent = "正在定位…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      // The browser's Geolocation API gives WGS-84; intake converts whatever datum it is told.
      place = { lat: pos.coords.latitude, lng: pos.coords.longitude, coord_system: "wgs84" };
      fetch("/api/v1/locate?lat=" + place.lat + "&lng=" + place.lng + "&coord_system=wgs84")
        .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
        .then(function (res) {
          if (res.ok) {
            text.textContent = "已定位：" + res.body.town_name + res.body.village_name + "（" + res.body.grid_name + "，网格员" + res.body.grid_worker + "）";
          } else {
            place = null;
            text.textContent = res.body.detail || "定位不在本县范围内，请填写详细地址。";
          }
        });
    }, function () {
      text.textContent = "定位失败，请允许获取位置，或填写详细地址。";
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    showError("");
    var description = document.getElementById("description").value.trim();
    var phone = document.getElementById("phone").value.trim();
    var address = document.getElementById("address").value.trim();
    if (description.length < 2) { showError("请填写问题描述"); return; }
    if (phone && !/^1[3-9]\d{9}$/.test(phone)) { showError("手机号格式不正确"); return; }
    if (!place && !address) { showError("请获取当前位置，或填写详细地址"); return; }
    var button = document.getElementById("submit");
    button.disabled = true;
    button.textContent = "提交中…";
    // One multipart request: the report and its photos (intake parks them for media to check).
    var body = new FormData();
    body.append("description", description);
    body.append("channel", "h5");
    if (place) { body.append("lat", place.lat); body.append("lng", place.lng); body.append("coord_system", place.coord_system); }
    if (address) { body.append("address", address); }
    if (phone) { body.append("reporter_phone", phone); }
    var files = document.getElementById("photos").files;
    for (var i = 0; i < files.length && i < 9; i++) { body.append("photos", files[i], files[i].name); }
    fetch("/api/v1/reports", {
      method: "POST", headers: { "idempotency-key": config.idempotency_key }, body: body
    }).then(function (r) {
      return r.json().then(function (b) { return { ok: r.ok, body: b }; });
    }).then(function (res) {
      if (!res.ok) { throw new Error(res.body.detail || res.body.title || "提交失败，请稍后再试"); }
      form.hidden = true;
      document.getElementById("done").hidden = false;
      document.getElementById("done-message").textContent = res.body.message;
      document.getElementById("case-no").textContent = res.body.case_no;
      document.getElementById("query-link").href = "/h5/query?case_no=" + encodeURIComponent(res.body.case_no);
      // Case updates are texted only to a phone its owner has proved (a code texted to it, typed back).
      document.getElementById("sms-hint").hidden = !phone;
    }).catch(function (err) {
      showError(err.message);
    }).then(function () {
      button.disabled = false;
      button.textContent = "提交";
    });
  });
})();
