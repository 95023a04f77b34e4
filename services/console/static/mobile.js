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
