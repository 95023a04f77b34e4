// 办结确认: one tap on the link in the 回访 message (?r=<report id>&t=<its secret>).
(function () {
  var params = new URLSearchParams(location.search);
  var errorBox = document.getElementById("error");
  var done = document.getElementById("done");
  var choices = document.getElementById("choices");
  function answer(solved) {
    errorBox.textContent = "";
    choices.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    fetch("/api/v1/confirmations", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ report_id: params.get("r"), token: params.get("t") || "", solved: solved })
    }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, status: r.status, body: b }; }); })
      .then(function (res) {
        if (res.ok) {
          choices.hidden = true;
          done.hidden = false;
          done.textContent = (res.body.case_no ? "案件 " + res.body.case_no + "：" : "") + res.body.message;
        } else {
          // 422: the link lost part of its address (copied short, or typed): the API's words are for
          // developers, so the resident is told what to do instead.
          errorBox.textContent = res.status === 422
            ? "这个确认链接不完整，请从回访消息中重新打开链接。"
            : res.body.detail || "确认未成功，请稍后再试";
          choices.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        }
      })
      .catch(function () {
        errorBox.textContent = "网络异常，请稍后再试";
        choices.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      });
  }
  document.getElementById("solved").addEventListener("click", function () { answer(true); });
  document.getElementById("unsolved").addEventListener("click", function () { answer(false); });
})();
