// 我要查询: case number + phone; the answer only ever holds this reporter's own reports.
(function () {
  var params = new URLSearchParams(location.search);
  if (params.get("case_no")) { document.getElementById("case-no").value = params.get("case_no"); }
  var errorBox = document.getElementById("error");
  function showCases(cases) {
    var list = document.getElementById("reports");
    list.innerHTML = "";
    document.getElementById("result").hidden = false;
    document.getElementById("status").textContent = cases.length ? "" : "暂无反映记录";
    document.getElementById("category").textContent = "";
    cases.forEach(function (c) {
      var li = document.createElement("li");
      li.textContent = "案件 " + c.case_no + "（" + c.category_name + "）：" + c.status_text + "；" +
        c.reports.map(function (r) { return r.description; }).join("；");
      list.appendChild(li);
    });
  }

  function post(url, body) {
    return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); });
  }

  var codeError = document.getElementById("code-error");

  // After repeated attempts the API asks for an image CAPTCHA (problem kind captcha-required):
  // it is shown then, sent with the next request, and replaced after each use (each is checked once).
  var captchaBox = document.getElementById("captcha");
  var captchaAnswer = document.getElementById("captcha-answer");
  var captchaId = null;
  function loadCaptcha() {
    captchaAnswer.value = "";
    return fetch("/api/v1/captcha").then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        if (!res.ok) { codeError.textContent = res.body.detail || "图形验证码加载失败，请点“换一张”"; return; }
        captchaId = res.body.captcha_id;
        var image = document.getElementById("captcha-image");
        image.src = res.body.image;
        image.dataset.captchaId = captchaId;
        document.getElementById("captcha-question").textContent = res.body.question;
        captchaBox.hidden = false;
      });
  }
  document.getElementById("captcha-refresh").addEventListener("click", loadCaptcha);
  function withCaptcha(body) {
    if (!captchaBox.hidden && captchaId) {
      body.captcha_id = captchaId;
      body.captcha_answer = captchaAnswer.value.trim();
    }
    return body;
  }
  function postWithCaptcha(url, body) {
    var used = !captchaBox.hidden;
    return post(url, withCaptcha(body)).then(function (res) {
      var wanted = !res.ok && /captcha-required$/.test(res.body.type || "");
      if (wanted || used) {
        loadCaptcha();  // a fresh one: the last was spent, or one is needed now
        if (wanted) { captchaAnswer.focus(); }
      }
      return res;
    });
  }

  document.getElementById("send-code").addEventListener("click", function () {
    var phone = document.getElementById("code-phone").value.trim();
    if (!/^1[3-9]\d{9}$/.test(phone)) { codeError.textContent = "手机号格式不正确"; return; }
    postWithCaptcha("/api/v1/query/codes", { phone: phone }).then(function (res) {
      codeError.textContent = res.ok ? res.body.message : (res.body.detail || "发送失败，请稍后再试");
    });
  });
  document.getElementById("code-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var phone = document.getElementById("code-phone").value.trim();
    var code = document.getElementById("code").value.trim();
    if (!/^\d{6}$/.test(code)) { codeError.textContent = "请输入6位验证码"; return; }
    postWithCaptcha("/api/v1/query/by-phone", { phone: phone, code: code }).then(function (res) {
      if (!res.ok) { codeError.textContent = res.body.detail || "查询失败，请稍后再试"; return; }
      codeError.textContent = "";
      showCases(res.body.cases);
    });
  });

  document.getElementById("query-form").addEventListener("submit", function (e) {
    e.preventDefault();
    errorBox.textContent = "";
    var caseNo = document.getElementById("case-no").value.trim();
    var phone = document.getElementById("phone").value.trim();
    if (!caseNo) { errorBox.textContent = "请填写案件编号"; return; }
    if (!/^1[3-9]\d{9}$/.test(phone)) { errorBox.textContent = "手机号格式不正确"; return; }
    fetch("/api/v1/query", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ case_no: caseNo, phone: phone })
    }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        if (!res.ok) { throw new Error(res.body.detail || "查询失败，请稍后再试"); }
        document.getElementById("result").hidden = false;
        document.getElementById("status").textContent = res.body.status_text;
        document.getElementById("category").textContent = res.body.category_name;
        var list = document.getElementById("reports");
        list.innerHTML = "";
        res.body.reports.forEach(function (r) {
          var li = document.createElement("li");
          li.textContent = r.submitted_at.slice(0, 16).replace("T", " ") + "（" + r.reporter_phone + "）：" + r.description;
          list.appendChild(li);
        });
      })
      .catch(function (err) { errorBox.textContent = err.message; });
  });
})();
