// GridLink mobile work page: the phone's position (navigator.geolocation, WGS-84) goes with each
// photo and action as evidence metadata. Without it (refused, no signal) everything still works.
(function () {
  "use strict";
  var status = document.querySelectorAll(".geo-status");
  function say(text) { for (var i = 0; i < status.length; i++) status[i].textContent = text; }
  function fill(cls, value) {
    var inputs = document.querySelectorAll("input." + cls);
    for (var i = 0; i < inputs.length; i++) inputs[i].value = value;
  }
  if (!document.querySelector("input.geo-lat")) return;
  if (!navigator.geolocation) { say("此手机不提供位置，照片将不带位置上传。"); return; }
  navigator.geolocation.getCurrentPosition(function (p) {
    fill("geo-lat", p.coords.latitude.toFixed(6));
    fill("geo-lng", p.coords.longitude.toFixed(6));
    fill("geo-accuracy", Math.round(p.coords.accuracy));
    say("已获取手机位置（误差约 " + Math.round(p.coords.accuracy) + " 米），将随照片保存。");
  }, function () {
    say("未能获取手机位置，照片将不带位置上传。");
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
