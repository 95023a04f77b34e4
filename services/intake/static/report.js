// 我要反映: photos go to the media service first, then the report (with their ids) to intake.
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

  function uploadPhotos(files) {
    var ids = [];
    var chain = Promise.resolve();
    Array.prototype.slice.call(files, 0, 9).forEach(function (file) {
      chain = chain.then(function () {
        var body = new FormData();
        body.append("file", file, file.name);
        return fetch(config.media_base + "/api/v1/media", { method: "POST", body: body })
          .then(function (r) {
            if (!r.ok) { throw new Error("照片上传失败，请换一张或稍后再试"); }
            return r.json();
          })
          .then(function (b) { ids.push(b.media_id); });
      });
    });
    return chain.then(function () { return ids; });
  }

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
    uploadPhotos(document.getElementById("photos").files).then(function (mediaIds) {
      var report = { description: description, channel: "h5", media_ids: mediaIds };
      if (place) { report.lat = place.lat; report.lng = place.lng; report.coord_system = place.coord_system; }
      if (address) { report.address = address; }
      if (phone) { report.reporter_phone = phone; }
      return fetch("/api/v1/reports", {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": config.idempotency_key },
        body: JSON.stringify(report)
      }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); });
    }).then(function (res) {
      if (!res.ok) { throw new Error(res.body.detail || res.body.title || "提交失败，请稍后再试"); }
      form.hidden = true;
      document.getElementById("done").hidden = false;
      document.getElementById("done-message").textContent = res.body.message;
      document.getElementById("case-no").textContent = res.body.case_no;
      document.getElementById("query-link").href = "/h5/query?case_no=" + encodeURIComponent(res.body.case_no);
    }).catch(function (err) {
      showError(err.message);
    }).then(function () {
      button.disabled = false;
      button.textContent = "提交";
    });
  });
})();
