/* The compact chat inside the widget's iframe (/embed). It calls /api/ask/stream on its own
 * origin and builds every node with textContent: text from the articles or the user is shown,
 * never interpreted as HTML. The page's CSP allows scripts, styles and requests from this
 * server only. */
(function () {
  "use strict";
  var STRINGS = {
    vi: {
      title: "Hỏi đáp chuyến thăm",
      greeting: "Xin chào! Hãy đặt câu hỏi về các chuyến thăm và làm việc ở nước ngoài của đoàn đại biểu thành phố Hà Nội.",
      placeholder: "Nhập câu hỏi…", send: "Gửi", close: "Đóng", question: "Câu hỏi",
      searching: "Đang tìm câu trả lời…", sources: "Nguồn", related: "Các đoạn liên quan",
      passage: "Xem đoạn trích", original: "bài gốc", untitled: "Không có tiêu đề",
      notFound: "Không tìm thấy thông tin này trong các bài báo.",
      like: "Hữu ích", dislike: "Chưa đúng", thanks: "Cảm ơn bạn đã góp ý!",
      rateLimited: "Bạn đã gửi quá nhiều câu hỏi trong thời gian ngắn. Vui lòng thử lại sau {s} giây.",
      unauthorized: "Widget chưa được cấp quyền truy cập hoặc phiên đã hết hạn. Vui lòng tải lại trang.",
      notReady: "Hệ thống đang khởi động. Vui lòng thử lại sau ít phút.",
      tooLong: "Câu hỏi quá dài: tối đa 1000 ký tự.",
      failed: "Đã có lỗi khi trả lời. Vui lòng thử lại."
    },
    en: {
      title: "Official visits Q&A",
      greeting: "Hello! Ask about the official visits abroad of Hà Nội's delegations. Answers come from Vietnamese news articles.",
      placeholder: "Type a question…", send: "Send", close: "Close", question: "Question",
      searching: "Looking for the answer…", sources: "Sources", related: "Related passages",
      passage: "Show passage", original: "original", untitled: "Untitled",
      notFound: "Not found in the articles.",
      like: "Helpful", dislike: "Wrong", thanks: "Thank you for your feedback!",
      rateLimited: "Too many questions in a short time. Please try again in {s} s.",
      unauthorized: "This widget is not authorised or its session has expired. Please reload the page.",
      notReady: "The service is starting. Please try again in a few minutes.",
      tooLong: "The question is too long: at most 1000 characters.",
      failed: "Something went wrong while answering. Please try again.",
      // Answer.reason -> the note shown above the answer (in Vietnamese the server's "note").
      notes: {
        deadline: "The language model did not answer in time; the answer below is extracted from the articles.",
        llm_error: "The language model could not be reached; the answer below is extracted from the articles.",
        echo: "The language model repeated its instructions instead of answering; the answer below is extracted from the articles.",
        llm_not_found: "The language model found no answer in the passages; the answer below is extracted from the articles.",
        no_citation: "The language model cited no source; the answer below is extracted from the articles.",
        ungrounded: "The cited passages do not support the language model's answer; the answer below is extracted from the articles.",
        partly_grounded: "Sentences the cited passages do not support were removed from the answer."
      }
    }
  };
  var COLOR = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}|rgba?\([\d\s.,%]+\)|hsla?\([\d\s.,%a-z]+\))$/;
  var MAX_TURNS = 10;

  var params = new URLSearchParams(location.search);
  var lang = params.get("lang") === "en" ? "en" : "vi";
  var t = STRINGS[lang];
  var token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  var history = [];
  var turn = 0;

  function $(id) { return document.getElementById(id); }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function safeUrl(url) {
    try {
      var parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : "";
    } catch (e) { return ""; }
  }
  function formatDate(date) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || "");
    return m && lang === "vi" ? m[3] + "/" + m[2] + "/" + m[1] : (date || "");
  }

  function addMessage(kind, text) {
    var node = el("div", "msg " + kind, text);
    $("messages").appendChild(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  // "… [1] … [2]": the numbers become links to the sources below the answer.
  function appendWithCitations(node, text, prefix) {
    var pattern = /\[(\d{1,3})\]/g, last = 0, match;
    while ((match = pattern.exec(text)) !== null) {
      node.appendChild(document.createTextNode(text.slice(last, match.index)));
      var link = el("a", "cite", "[" + match[1] + "]");
      link.href = "#" + prefix + match[1];
      node.appendChild(link);
      last = pattern.lastIndex;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
  }

  function passage(citation) {
    var quote = el("blockquote");
    var text = citation.text || "", at = citation.quote ? text.indexOf(citation.quote) : -1;
    if (at < 0) { quote.textContent = text; return quote; }
    quote.appendChild(document.createTextNode(text.slice(0, at)));
    quote.appendChild(el("mark", "", citation.quote));
    quote.appendChild(document.createTextNode(text.slice(at + citation.quote.length)));
    return quote;
  }

  function sourceList(citations, heading, prefix) {
    var box = el("section", "sources");
    box.appendChild(el("h2", "", heading));
    var list = el("ol");
    citations.forEach(function (c) {
      var item = el("li");
      item.id = prefix + c.n;
      item.appendChild(el("span", "n", "[" + c.n + "]"));
      var url = safeUrl(c.url);
      var title = el(url ? "a" : "span", "title", c.title || t.untitled);
      if (url) { title.href = url; title.target = "_blank"; title.rel = "noopener noreferrer"; }
      item.appendChild(title);
      var meta = [c.outlet, c.author, formatDate(c.date)].filter(Boolean).join(" · ");
      if (meta) { item.appendChild(el("div", "meta", meta)); }
      var details = el("details");
      details.appendChild(el("summary", "", t.passage));
      details.appendChild(passage(c));
      item.appendChild(details);
      list.appendChild(item);
    });
    box.appendChild(list);
    return box;
  }

  function renderAnswer(node, answer, question) {
    var prefix = "s" + (++turn) + "-";
    node.textContent = "";
    var note = lang === "en" ? (t.notes[answer.reason] || "") : (answer.note || "");
    if (note) node.appendChild(el("div", "note", note));
    if (answer.abstained) {
      node.appendChild(document.createTextNode(lang === "en" ? t.notFound : answer.answer));
    } else {
      appendWithCitations(node, answer.answer, prefix);
    }
    var sources = answer.abstained ? answer.related : answer.citations;
    if (sources && sources.length) node.appendChild(sourceList(sources, answer.abstained ? t.related : t.sources, prefix));
    node.appendChild(ratingButtons(question, answer));
  }

  function ratingButtons(question, answer) {
    var row = el("div", "rate");
    // Words, not emoji: an intranet PC may have no emoji font.
    [[1, t.like], [-1, t.dislike]].forEach(function (choice) {
      var button = el("button", "", choice[1]);
      button.type = "button";
      button.addEventListener("click", function () {
        api("/api/feedback", { question: question, answer: answer, rating: choice[0] }).then(function (response) {
          row.textContent = "";
          row.appendChild(el("span", "thanks", response.ok ? t.thanks : t.failed));
        }, function () {
          row.textContent = "";
          row.appendChild(el("span", "thanks", t.failed));
        });
      });
      row.appendChild(button);
    });
    return row;
  }

  function api(path, body) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body), credentials: "omit" });
  }

  function errorText(status, body, retryAfter) {
    if (status === 429) return t.rateLimited.replace("{s}", retryAfter || "60");
    if (status === 401) return t.unauthorized;
    if (status === 503) return t.notReady;
    if (body && body.error === "question_too_long") return t.tooLong;
    return t.failed;
  }

  // Server-sent events over fetch (EventSource cannot POST): "event: x\ndata: {...}\n\n".
  function readEvents(response, onEvent) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        buffer += decoder.decode(chunk.value || new Uint8Array(), { stream: !chunk.done });
        var blocks = buffer.split("\n\n");
        buffer = blocks.pop();
        blocks.forEach(function (block) {
          var name = "message", data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) name = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          if (data) onEvent(name, JSON.parse(data));
        });
        return chunk.done ? null : pump();
      });
    }
    return pump();
  }

  function ask(question) {
    addMessage("user", question);
    var bubble = addMessage("bot", t.searching);
    bubble.setAttribute("aria-busy", "true");
    var streamed = "", final = null;
    $("send").disabled = true;
    return api("/api/ask/stream", { question: question, history: history.slice(-MAX_TURNS) }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return null; }).then(function (body) {
          bubble.classList.add("error");
          bubble.textContent = errorText(response.status, body, response.headers.get("Retry-After"));
        });
      }
      return readEvents(response, function (name, data) {
        if (name === "delta") {
          streamed += data.text;
          bubble.textContent = streamed;
        } else if (name === "final") {
          final = data;
          renderAnswer(bubble, data, question);
          history.push({ question: question, answer: data.answer.slice(0, 4000) });
        } else if (name === "error") {
          bubble.classList.add("error");
          bubble.textContent = t.failed;
        }
      }).then(function () {
        if (!final && !bubble.classList.contains("error")) { bubble.classList.add("error"); bubble.textContent = t.failed; }
      });
    }).catch(function () {
      bubble.classList.add("error");
      bubble.textContent = t.failed;
    }).then(function () {
      bubble.setAttribute("aria-busy", "false");
      $("send").disabled = false;
      bubble.scrollIntoView({ block: "end" });
    });
  }

  function start() {
    document.documentElement.lang = lang;
    var title = params.get("title") || t.title;
    document.title = title;
    $("title").textContent = title;
    var color = params.get("color") || "";
    if (COLOR.test(color)) document.documentElement.style.setProperty("--accent", color);
    var input = $("question");
    input.placeholder = t.placeholder;
    input.setAttribute("aria-label", t.question);
    $("send").textContent = t.send;
    var close = $("close");
    close.setAttribute("aria-label", t.close);
    close.title = t.close;
    if (window.parent === window) close.hidden = true;
    close.addEventListener("click", function () {
      // Only a "close" signal, no data: the widget script checks that it comes from this frame.
      window.parent.postMessage({ type: "rag-widget:close" }, "*");
    });
    addMessage("bot", params.get("greeting") || t.greeting);

    $("form").addEventListener("submit", function (event) {
      event.preventDefault();
      var question = input.value.trim();
      if (!question || $("send").disabled) return;
      input.value = "";
      ask(question);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("form").requestSubmit();
      }
    });
    input.focus();
  }
  start();
})();
