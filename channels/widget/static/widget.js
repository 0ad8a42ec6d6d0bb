/*
 * CRAFT course-advisor widget: one <script src=".../widget.js" data-craft-url="https://api.example"> tag puts
 * a chat bubble on any page. Vanilla JS, no build step, no globals except window.CraftWidget; everything is
 * rendered inside a Shadow DOM root so the host page's CSS and ours never meet.
 *
 * Attributes on the script tag:
 *   data-craft-url  base URL of the CRAFT API (default: the origin the script was loaded from)
 *   data-lang       "en" | "de" for the widget's own labels (default: navigator.language); the advisor's
 *                   replies follow the language the user writes in (decided by the server)
 *   data-css        URL of the stylesheet (default: widget.css next to widget.js)
 *   data-open       "true" opens the panel on load
 *
 * API used (see the server's OpenAPI at /docs): POST /v1/sessions, POST /v1/sessions/{id}/messages with
 * "Accept: text/event-stream" (events token / profile / recommendations / explanation / done / error),
 * GET /v1/sessions/{id} (the profile), POST /v1/sessions/{id}/feedback, DELETE /v1/sessions/{id}.
 *
 * A dislike (or "taken") on a course card records the verdict with POST .../feedback, then asks for a fresh
 * list by sending the message "show me other courses" (the advisor never shows a disliked course again), so
 * the refreshed list arrives through the same streaming path as every other reply.
 *
 * Every string from the server is inserted with textContent; the only markup we build from it is **bold**
 * and line breaks, created as DOM nodes. Course links must be http(s) and open with rel="noopener".
 *
 * The widget dispatches "craft-widget:event" CustomEvents on its host element (<craft-widget>) for every
 * stream event it renders (detail: {type, ...}); tests and host pages may listen, nothing depends on it.
 */
(function () {
  "use strict";

  if (window.CraftWidget && window.CraftWidget.loaded) {
    return;
  }

  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll("script[data-craft-url], script[src*='widget.js']");
    script = all[all.length - 1] || null;
  }
  var scriptSrc = script && script.src ? script.src : window.location.href;
  // data-craft-url may be absolute (another origin: list the host page in the server's CORS allowlist) or
  // relative to the script ("/" = the server that served widget.js)
  var baseUrl = new URL((script && script.getAttribute("data-craft-url")) || "/", scriptSrc).href.replace(
    /\/+$/,
    ""
  );
  var cssUrl = (script && script.getAttribute("data-css")) || new URL("widget.css", scriptSrc).href;
  var storageKey = "craft-widget:" + baseUrl;

  var STRINGS = {
    en: {
      title: "Course advisor",
      open: "Open the course advisor",
      close: "Close the course advisor",
      profileShow: "Show my profile",
      profileHide: "Hide my profile",
      profileBtn: "Profile",
      reset: "Start a new conversation (deletes this one)",
      resetBtn: "New",
      resetConfirm: "Delete this conversation and start over?",
      inputLabel: "Your message",
      placeholder: "Type your message…",
      send: "Send",
      sendLabel: "Send message",
      greeting:
        "Hi! Tell me which job you would like to have, and what you already know. " +
        "I'll suggest courses that close the gap.",
      choose: "Which one do you mean?",
      chooseLabel: "Choose",
      courses: "Recommended courses",
      free: "free",
      level: "Level",
      covers: "Covers",
      like: "I like this course",
      dislike: "Not for me",
      liked: "Thanks, noted.",
      disliked: "Noted, looking for other courses…",
      taken: "Noted as taken.",
      refresh: "show me other courses",
      profileTitle: "Your profile",
      target: "Target occupation",
      noTarget: "Not chosen yet.",
      have: "Skills you have",
      none: "None yet.",
      gap: "Skill gap",
      noGap: "Nothing to learn yet.",
      essential: "essential",
      showAll: "Show all {n}",
      showFewer: "Show fewer",
      coverage: "Coverage of the recommended courses",
      coverageText: "{x} of {y} essential skills",
      coverageAll: "{x} of {y} skills in total",
      noCoverage: "No courses recommended yet.",
      path: "Learning path",
      netError: "Connection problem: the advisor could not be reached.",
      streamError: "The answer was interrupted.",
      serverError: "Something went wrong on the server.",
      tooLong: "That message is too long. Please shorten it.",
      retry: "Retry",
      thinking: "Thinking…",
      feedbackError: "Your feedback could not be sent.",
      you: "You",
      advisor: "Advisor",
    },
    de: {
      title: "Kursberater",
      open: "Kursberater öffnen",
      close: "Kursberater schließen",
      profileShow: "Mein Profil anzeigen",
      profileHide: "Mein Profil ausblenden",
      profileBtn: "Profil",
      reset: "Neues Gespräch beginnen (löscht dieses)",
      resetBtn: "Neu",
      resetConfirm: "Dieses Gespräch löschen und neu beginnen?",
      inputLabel: "Ihre Nachricht",
      placeholder: "Ihre Nachricht…",
      send: "Senden",
      sendLabel: "Nachricht senden",
      greeting:
        "Hallo! Sagen Sie mir, welchen Beruf Sie anstreben und was Sie schon können. " +
        "Ich schlage Kurse vor, die die Lücke schließen.",
      choose: "Welchen Beruf meinen Sie?",
      chooseLabel: "Auswählen",
      courses: "Empfohlene Kurse",
      free: "kostenlos",
      level: "Niveau",
      covers: "Deckt ab",
      like: "Dieser Kurs gefällt mir",
      dislike: "Nichts für mich",
      liked: "Danke, notiert.",
      disliked: "Notiert, ich suche andere Kurse…",
      taken: "Als absolviert notiert.",
      refresh: "zeig mir andere Kurse",
      profileTitle: "Ihr Profil",
      target: "Zielberuf",
      noTarget: "Noch nicht gewählt.",
      have: "Ihre Fähigkeiten",
      none: "Noch keine.",
      gap: "Qualifikationslücke",
      noGap: "Noch nichts zu lernen.",
      essential: "wesentlich",
      showAll: "Alle {n} anzeigen",
      showFewer: "Weniger anzeigen",
      coverage: "Abdeckung durch die empfohlenen Kurse",
      coverageText: "{x} von {y} wesentlichen Fähigkeiten",
      coverageAll: "{x} von {y} Fähigkeiten insgesamt",
      noCoverage: "Noch keine Kurse empfohlen.",
      path: "Lernpfad",
      netError: "Verbindungsproblem: Der Berater ist nicht erreichbar.",
      streamError: "Die Antwort wurde unterbrochen.",
      serverError: "Auf dem Server ist etwas schiefgegangen.",
      tooLong: "Diese Nachricht ist zu lang. Bitte kürzen Sie sie.",
      retry: "Erneut versuchen",
      thinking: "Denke nach…",
      feedbackError: "Ihr Feedback konnte nicht gesendet werden.",
      you: "Sie",
      advisor: "Berater",
    },
  };

  function pickLang() {
    var wanted = (script && script.getAttribute("data-lang")) || navigator.language || "en";
    return String(wanted).toLowerCase().indexOf("de") === 0 ? "de" : "en";
  }

  var lang = pickLang();
  var T = STRINGS[lang];
  var MAX_TRANSCRIPT = 60;
  var GAP_SHOWN = 8; // gap items listed before "show all"

  // ---- small DOM helpers (no innerHTML anywhere) --------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") node.textContent = String(value);
        else if (key === "class") node.className = value;
        else if (key.indexOf("on") === 0) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  // Icons as inline SVG (emoji glyphs are missing on many systems); drawn here, aria-hidden, the buttons
  // carry aria-labels.
  var ICONS = {
    chat: "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H10l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z",
    up:
      "M2 10h4v11H2zM8 21h9.5a2 2 0 0 0 1.9-1.4l2.1-6.3A2 2 0 0 0 19.6 11H14l1-4.5A2 2 0 0 0 13 4h-.5L8 10z",
  };

  function icon(name, flip) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    if (flip) path.setAttribute("transform", "rotate(180 12 12)");
    svg.appendChild(path);
    return svg;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) {
      return String(values[key]);
    });
  }

  /** Server text as DOM: **bold** and line breaks only; everything else stays literal text. */
  function renderRich(target, text) {
    clear(target);
    var lines = String(text || "").split(/\r?\n/);
    lines.forEach(function (line, i) {
      if (i > 0) target.appendChild(document.createElement("br"));
      var parts = line.split(/\*\*(.+?)\*\*/g);
      parts.forEach(function (part, j) {
        if (!part) return;
        if (j % 2 === 1) target.appendChild(el("strong", { text: part }));
        else target.appendChild(document.createTextNode(part));
      });
    });
  }

  function safeUrl(raw) {
    if (!raw) return null;
    try {
      var url = new URL(String(raw), window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function formatPrice(course) {
    if (course.free === true || course.price === 0) return T.free;
    if (typeof course.price !== "number") return null;
    try {
      return new Intl.NumberFormat(lang, {
        style: "currency",
        currency: course.currency || "EUR",
        maximumFractionDigits: 2,
      }).format(course.price);
    } catch (e) {
      return course.price + " " + (course.currency || "");
    }
  }

  // ---- state --------------------------------------------------------------------------------------------

  var state = {
    sessionId: null,
    transcript: [], // [{role: "user"|"assistant", text}]
    profile: null,
    open: false,
    profileOpen: false,
    busy: false,
    lastAction: null,
    candidatesNode: null,
    cardsNode: null,
    cardById: {},
    gapExpanded: false,
    pendingRefresh: false,
  };

  function load() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(storageKey) || "null");
      if (saved && typeof saved.sessionId === "string") {
        state.sessionId = saved.sessionId;
        state.transcript = Array.isArray(saved.transcript) ? saved.transcript : [];
        state.profileOpen = !!saved.profileOpen;
      }
    } catch (e) {
      /* storage unavailable or corrupt: start fresh */
    }
  }

  function save() {
    try {
      if (!state.sessionId) {
        window.localStorage.removeItem(storageKey);
        return;
      }
      window.localStorage.setItem(
        storageKey,
        JSON.stringify({
          sessionId: state.sessionId,
          transcript: state.transcript.slice(-MAX_TRANSCRIPT),
          profileOpen: state.profileOpen,
        })
      );
    } catch (e) {
      /* private mode / quota: the conversation still works, it just is not restored on reload */
    }
  }

  // ---- DOM ----------------------------------------------------------------------------------------------

  var host = document.createElement("craft-widget");
  host.style.setProperty("all", "initial"); // CSSOM, so a strict host CSP (no inline styles) allows it
  var root = host.attachShadow({ mode: "open" });
  var uid = "craft-" + Math.random().toString(36).slice(2, 8);

  var styleLink = el("link", { rel: "stylesheet", href: cssUrl });
  var baseStyle = el("style", {
    // until widget.css has loaded (it makes them visible), nothing unstyled flashes on the host page
    text: ":host{all:initial}[hidden]{display:none!important}.bubble,.panel{visibility:hidden}",
  });

  var bubble = el("button", {
    type: "button",
    class: "bubble",
    "aria-label": T.open,
    "aria-expanded": "false",
    "aria-controls": uid + "-panel",
    "aria-haspopup": "dialog",
  }, [icon("chat")]);

  var titleNode = el("h2", { id: uid + "-title", text: T.title });
  var profileBtn = el("button", {
    type: "button",
    class: "icon-btn profile-toggle",
    "aria-label": T.profileShow,
    "aria-pressed": "false",
    "aria-controls": uid + "-profile",
    text: T.profileBtn,
  });
  var resetBtn = el("button", {
    type: "button",
    class: "icon-btn reset",
    "aria-label": T.reset,
    text: T.resetBtn,
  });
  var closeBtn = el("button", {
    type: "button",
    class: "icon-btn close",
    "aria-label": T.close,
    text: "✕",
  });
  var header = el("div", { class: "header" }, [titleNode, profileBtn, resetBtn, closeBtn]);

  var log = el("div", {
    class: "log",
    role: "log",
    "aria-live": "polite",
    "aria-relevant": "additions",
    "aria-label": T.title,
    tabindex: "0",
  });

  var errorText = el("p", { role: "alert" });
  var retryBtn = el("button", { type: "button", class: "retry", text: T.retry, "aria-label": T.retry });
  var errorBox = el("div", { class: "error", hidden: true }, [errorText, retryBtn]);

  var input = el("textarea", {
    id: uid + "-input",
    rows: "1",
    placeholder: T.placeholder,
    autocomplete: "off",
  });
  var inputLabel = el("label", { for: uid + "-input", class: "sr-only", text: T.inputLabel });
  var sendBtn = el("button", { type: "submit", class: "send", "aria-label": T.sendLabel, text: T.send });
  var form = el("form", { class: "composer" }, [inputLabel, input, sendBtn]);

  var chat = el("div", { class: "chat" }, [header, log, errorBox, form]);
  var profilePane = el("aside", {
    id: uid + "-profile",
    class: "profile",
    "aria-label": T.profileTitle,
    hidden: true,
  });
  var panel = el(
    "div",
    {
      id: uid + "-panel",
      class: "panel",
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": uid + "-title",
      hidden: true,
    },
    [profilePane, chat]
  );

  root.appendChild(baseStyle);
  root.appendChild(styleLink);
  root.appendChild(bubble);
  root.appendChild(panel);

  function emit(type, detail) {
    var payload = Object.assign({ type: type }, detail || {});
    host.dispatchEvent(
      new CustomEvent("craft-widget:event", { detail: payload, bubbles: true, composed: true })
    );
  }

  // ---- open / close / focus -----------------------------------------------------------------------------

  function openPanel() {
    if (state.open) return;
    state.open = true;
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    bubble.setAttribute("aria-label", T.close);
    bubble.classList.add("hidden-mobile");
    scrollLog();
    input.focus();
    emit("open");
  }

  function closePanel() {
    if (!state.open) return;
    state.open = false;
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-label", T.open);
    bubble.classList.remove("hidden-mobile");
    bubble.focus();
    emit("close");
  }

  function setProfileOpen(open) {
    state.profileOpen = open;
    profilePane.hidden = !open;
    panel.classList.toggle("with-profile", open);
    profileBtn.setAttribute("aria-pressed", open ? "true" : "false");
    profileBtn.setAttribute("aria-label", open ? T.profileHide : T.profileShow);
    save();
  }

  bubble.addEventListener("click", function () {
    if (state.open) closePanel();
    else openPanel();
  });
  closeBtn.addEventListener("click", closePanel);
  profileBtn.addEventListener("click", function () {
    setProfileOpen(!state.profileOpen);
  });
  root.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && state.open) {
      event.stopPropagation();
      closePanel();
    }
  });

  // ---- log rendering ------------------------------------------------------------------------------------

  function scrollLog() {
    log.scrollTop = log.scrollHeight;
  }

  function addMessage(role, text) {
    var node = el("div", { class: "msg " + role });
    node.appendChild(el("span", { class: "sr-only", text: (role === "user" ? T.you : T.advisor) + ": " }));
    var body = el("span", { class: "body" });
    renderRich(body, text);
    node.appendChild(body);
    log.appendChild(node);
    scrollLog();
    return { node: node, body: body };
  }

  function remember(role, text) {
    state.transcript.push({ role: role, text: text });
    var extra = state.transcript.length - MAX_TRANSCRIPT;
    if (extra > 0) state.transcript.splice(0, extra);
    save();
  }

  function removeNode(node) {
    if (node && node.parentNode) node.parentNode.removeChild(node);
  }

  function renderCandidates(candidates) {
    removeNode(state.candidatesNode);
    state.candidatesNode = null;
    if (!candidates || !candidates.length) return;
    var list = el("ul", { class: "choices", "aria-label": T.choose });
    candidates.forEach(function (candidate, i) {
      var label = candidate.label || candidate.uri || String(i + 1);
      var button = el("button", {
        type: "button",
        class: "choice",
        "aria-label": T.chooseLabel + ": " + label,
        text: i + 1 + ". " + label,
        onclick: function () {
          send(String(i + 1), label);
        },
      });
      list.appendChild(el("li", null, [button]));
    });
    state.candidatesNode = list;
    log.appendChild(list);
    scrollLog();
  }

  function courseCard(course) {
    var url = safeUrl(course.url);
    var title = course.title || course.course_id;
    var heading = el("h3", null, [
      url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: title }) : title,
    ]);
    var level = course.level && course.level !== "unknown" ? T.level + ": " + course.level : null;
    var meta = [course.provider, formatPrice(course), level]
      .concat([course.format, course.language ? course.language.toUpperCase() : null])
      .filter(Boolean)
      .join(" · ");
    var chips = el("ul", { class: "chips", "aria-label": T.covers });
    (course.covers || []).forEach(function (skill) {
      chips.appendChild(
        el("li", { class: "chip", title: skill.uri || null, text: skill.label || skill.uri })
      );
    });
    var explanation = el("p", { class: "explanation", hidden: !course.explanation });
    renderRich(explanation, course.explanation || "");
    var status = el("span", { class: "card-status", role: "status" });
    var like = el("button", {
      type: "button",
      class: "vote like",
      "aria-label": T.like + ": " + title,
      "aria-pressed": course.feedback === "like" ? "true" : "false",
    }, [icon("up")]);
    var dislike = el("button", {
      type: "button",
      class: "vote dislike",
      "aria-label": T.dislike + ": " + title,
      "aria-pressed": course.feedback === "dislike" ? "true" : "false",
    }, [icon("up", true)]);
    var card = el("li", { class: "card", "data-course-id": course.course_id }, [
      heading,
      meta ? el("p", { class: "meta", text: meta }) : null,
      course.covers && course.covers.length ? chips : null,
      explanation,
      el("div", { class: "card-actions" }, [like, dislike, status]),
    ]);
    like.addEventListener("click", function () {
      feedback(course, "like", card);
    });
    dislike.addEventListener("click", function () {
      feedback(course, "dislike", card);
    });
    state.cardById[course.course_id] = { card: card, explanation: explanation, course: course };
    return card;
  }

  function renderCourses(items) {
    removeNode(state.cardsNode);
    state.cardsNode = null;
    state.cardById = {};
    if (!items || !items.length) return;
    var list = el("ul", { class: "cards", "aria-label": T.courses });
    items.forEach(function (course) {
      list.appendChild(courseCard(course));
    });
    state.cardsNode = list;
    log.appendChild(list);
    scrollLog();
  }

  function setExplanation(courseId, text) {
    var entry = state.cardById[courseId];
    if (!entry || !text) return;
    entry.course.explanation = text;
    entry.explanation.hidden = false;
    renderRich(entry.explanation, text);
  }

  // ---- advisor side panel -------------------------------------------------------------------------------

  function coverageOf(profile) {
    var c = profile.coverage;
    if (c && typeof c.essential_total === "number") return c;
    var recs = profile.recommendations || [];
    if (!recs.length) return null;
    var covered = {};
    recs.forEach(function (course) {
      (course.covers || []).forEach(function (s) {
        covered[s.uri] = true;
      });
    });
    var gap = profile.skill_gap || [];
    var essential = gap.filter(function (g) {
      return g.essential;
    });
    return {
      essential_total: essential.length,
      essential_covered: essential.filter(function (g) {
        return covered[g.uri];
      }).length,
      total: gap.length,
      covered: gap.filter(function (g) {
        return covered[g.uri];
      }).length,
    };
  }

  function section(title, content) {
    return [el("h4", { text: title }), content];
  }

  function renderProfile(profile) {
    clear(profilePane);
    profilePane.appendChild(el("h3", { text: T.profileTitle }));
    profile = profile || {};
    var occupation = profile.target_occupation;
    section(
      T.target,
      el("p", {
        class: occupation ? "occupation" : "occupation muted",
        text: occupation ? occupation.label : T.noTarget,
      })
    ).forEach(function (n) {
      profilePane.appendChild(n);
    });

    var coverage = coverageOf(profile);
    var coverageBox = el("div", { class: "coverage" });
    if (coverage) {
      var x = coverage.essential_covered;
      var y = coverage.essential_total;
      var share = y ? Math.round((100 * x) / y) : 100;
      var text = fmt(T.coverageText, { x: x, y: y });
      var fill = el("span");
      fill.style.width = share + "%"; // CSSOM, not a style attribute: allowed under a strict host CSP
      coverageBox.appendChild(el("p", { class: "coverage-text", text: text }));
      coverageBox.appendChild(
        el(
          "div",
          {
            class: "bar",
            role: "progressbar",
            "aria-valuemin": "0",
            "aria-valuemax": "100",
            "aria-valuenow": String(share),
            "aria-valuetext": text,
            "aria-label": T.coverage,
          },
          [fill]
        )
      );
      if (typeof coverage.total === "number" && coverage.total) {
        coverageBox.appendChild(
          el("p", { class: "muted", text: fmt(T.coverageAll, { x: coverage.covered, y: coverage.total }) })
        );
      }
    } else {
      coverageBox.appendChild(el("p", { class: "muted", text: T.noCoverage }));
    }
    section(T.coverage, coverageBox).forEach(function (n) {
      profilePane.appendChild(n);
    });

    var have = profile.skills_have || [];
    var haveList = el("ul", { class: "chips skills-have" });
    have.forEach(function (s) {
      haveList.appendChild(el("li", { class: "chip have", text: s.label || s.uri }));
    });
    section(T.have, have.length ? haveList : el("p", { class: "muted", text: T.none })).forEach(function (n) {
      profilePane.appendChild(n);
    });

    var gap = profile.skill_gap || [];
    var gapList = el("ul", { class: "gap-list", id: uid + "-gap" });
    gap.forEach(function (g, i) {
      gapList.appendChild(
        el("li", { class: g.essential ? "essential" : null, hidden: i >= GAP_SHOWN && !state.gapExpanded }, [
          g.label || g.uri,
          g.essential ? el("span", { class: "badge", text: T.essential }) : null,
        ])
      );
    });
    section(T.gap, gap.length ? gapList : el("p", { class: "muted", text: T.noGap })).forEach(function (n) {
      profilePane.appendChild(n);
    });
    if (gap.length > GAP_SHOWN) {
      var more = el("button", {
        type: "button",
        class: "more",
        "aria-expanded": state.gapExpanded ? "true" : "false",
        "aria-controls": uid + "-gap",
        text: state.gapExpanded ? T.showFewer : fmt(T.showAll, { n: gap.length }),
      });
      more.addEventListener("click", function () {
        state.gapExpanded = !state.gapExpanded;
        renderProfile(state.profile);
        var again = profilePane.querySelector(".more");
        if (again) again.focus();
      });
      profilePane.appendChild(more);
    }

    var path = profile.learning_path || profile.path || [];
    if (path.length) {
      var pathList = el("ol", { class: "path-list" });
      path.forEach(function (step) {
        var adds = (step.adds || [])
          .map(function (s) {
            return s.label;
          })
          .join(", ");
        pathList.appendChild(
          el("li", null, [
            step.title || step.course_id,
            step.level ? " (" + step.level + ")" : "",
            adds ? el("div", { class: "muted", text: "+ " + adds }) : null,
          ])
        );
      });
      section(T.path, pathList).forEach(function (n) {
        profilePane.appendChild(n);
      });
    }
  }

  /** A profile from the server: side panel, occupation choices, and (on restore) the current cards. */
  function applyProfile(profile, withCourses) {
    if (!profile || typeof profile !== "object") return;
    state.profile = profile;
    renderProfile(profile);
    var candidates = profile.occupation_candidates || [];
    if (candidates.length) renderCandidates(candidates);
    else {
      removeNode(state.candidatesNode);
      state.candidatesNode = null;
    }
    if (withCourses) renderCourses(profile.recommendations || []);
    else
      (profile.recommendations || []).forEach(function (course) {
        if (course.explanation) setExplanation(course.course_id, course.explanation);
      });
  }

  // ---- errors -------------------------------------------------------------------------------------------

  function showError(message, action) {
    errorText.textContent = message;
    errorBox.hidden = false;
    state.lastAction = action || null;
    retryBtn.hidden = !action;
    emit("error", { message: message });
  }

  function hideError() {
    errorBox.hidden = true;
    errorText.textContent = "";
    state.lastAction = null;
  }

  retryBtn.addEventListener("click", function () {
    var action = state.lastAction;
    hideError();
    if (action) action();
    input.focus();
  });

  // ---- HTTP ---------------------------------------------------------------------------------------------

  function HttpError(status, detail) {
    this.status = status;
    this.detail = detail;
  }

  function readError(response) {
    return response
      .json()
      .catch(function () {
        return {};
      })
      .then(function (body) {
        // the API's error shape is {"error": {"code", "message"}}; the message is written for the user
        var error = body && body.error;
        var detail = error && typeof error === "object" ? error.message : body && (body.detail || error);
        throw new HttpError(response.status, typeof detail === "string" ? detail : null);
      });
  }

  function api(method, path, body) {
    var options = { method: method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(baseUrl + path, options).then(function (response) {
      if (!response.ok) return readError(response);
      if (response.status === 204) return null;
      return response.json();
    });
  }

  function ensureSession() {
    if (state.sessionId) return Promise.resolve(state.sessionId);
    return api("POST", "/v1/sessions", { channel: "widget" }).then(function (body) {
      state.sessionId = body.session_id;
      save();
      return state.sessionId;
    });
  }

  /** Server-Sent Events over a fetch() body (EventSource cannot POST): calls onEvent(name, data). */
  function readSse(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";

    function dispatch(block) {
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var colon = line.indexOf(":");
        var field = colon === -1 ? line : line.slice(0, colon);
        var value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      });
      if (!data.length && name === "message") return;
      var raw = data.join("\n");
      var parsed = raw;
      try {
        parsed = JSON.parse(raw);
      } catch (e) {
        /* plain-text data */
      }
      onEvent(name, parsed);
    }

    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          if (buffer.trim()) dispatch(buffer.replace(/\r\n?/g, "\n"));
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        // normalise CRLF (sse-starlette's default) but keep a trailing "\r" until its "\n" arrives
        var keep = buffer.charAt(buffer.length - 1) === "\r" ? "\r" : "";
        var text = (keep ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n");
        var blocks = text.split("\n\n");
        buffer = blocks.pop() + keep;
        blocks.forEach(dispatch);
        return pump();
      });
    }

    return pump();
  }

  // ---- a turn -------------------------------------------------------------------------------------------

  function setBusy(busy) {
    state.busy = busy;
    sendBtn.disabled = busy;
    log.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function tokenText(data) {
    if (typeof data === "string") return data;
    if (data && typeof data.text === "string") return data.text;
    if (data && typeof data.delta === "string") return data.delta;
    return "";
  }

  function itemsOf(data) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data.items)) return data.items;
    if (data && Array.isArray(data.recommendations)) return data.recommendations;
    return [];
  }

  /** Send ``text`` (shown as ``shown`` in the log) and stream the reply into a new assistant bubble. */
  function send(text, shown, isRetry) {
    text = String(text || "").trim();
    if (!text || state.busy) return Promise.resolve();
    hideError();
    if (!isRetry) {
      addMessage("user", shown || text);
      remember("user", shown || text);
    }
    setBusy(true);
    removeNode(state.candidatesNode); // the choice is being answered (or superseded)
    state.candidatesNode = null;
    var reply = "";
    var finished = false;
    var gotAnything = false;
    // the reply's bubble exists before any event, so choices and cards always land below it
    var bubbleRef = addMessage("assistant", "");
    bubbleRef.node.classList.add("streaming");

    function assistant() {
      return bubbleRef;
    }

    function onEvent(name, data) {
      gotAnything = true;
      if (name === "token") {
        var delta = tokenText(data);
        if (!delta) return;
        reply += delta;
        renderRich(assistant().body, reply);
        scrollLog();
        emit("token", { text: delta, length: reply.length });
      } else if (name === "profile") {
        applyProfile(data && data.profile ? data.profile : data, false);
        emit("profile", { profile: state.profile });
      } else if (name === "candidates") {
        renderCandidates(itemsOf(data));
      } else if (name === "recommendations") {
        renderCourses(itemsOf(data));
        emit("recommendations", { count: itemsOf(data).length });
      } else if (name === "explanation") {
        setExplanation(data && data.course_id, data && data.text);
      } else if (name === "done") {
        finished = true;
        var full = data && typeof data.reply === "string" ? data.reply : null;
        if (full !== null && full !== reply) {
          reply = full;
          renderRich(assistant().body, reply);
        }
        if (data && data.profile) applyProfile(data.profile, false);
        emit("done", { reply: reply });
      } else if (name === "error") {
        finished = true;
        var detail = data && typeof data === "object" ? data.detail || data.message : data;
        showError(typeof detail === "string" && detail ? detail : T.serverError, function () {
          send(text, shown, true);
        });
      }
    }

    return ensureSession()
      .then(function (sessionId) {
        return fetch(baseUrl + "/v1/sessions/" + encodeURIComponent(sessionId) + "/messages", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
          body: JSON.stringify({ text: text }),
        });
      })
      .then(function (response) {
        if (!response.ok) return readError(response);
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("text/event-stream") === -1) {
          // a server that answered with plain JSON: render it the same way
          return response.json().then(function (body) {
            if (body.reply) onEvent("token", { text: body.reply });
            var recs = body.recommendations || [];
            if (recs.length) onEvent("recommendations", recs);
            if (body.profile) onEvent("profile", body.profile);
            onEvent("done", { reply: body.reply });
          });
        }
        return readSse(response, onEvent);
      })
      .then(function () {
        if (!finished) throw new Error("stream ended early");
      })
      .catch(function (error) {
        if (error instanceof HttpError && error.status === 404 && !isRetry) {
          // the session expired or was deleted on the server: start a new one and send again
          state.sessionId = null;
          save();
          setBusy(false);
          return send(text, shown, true);
        }
        var message = T.netError;
        if (error instanceof HttpError) {
          message = error.status === 413 ? error.detail || T.tooLong : error.detail || T.serverError;
        } else if (gotAnything) {
          message = T.streamError;
        }
        var retry = function () {
          send(text, shown, true);
        };
        showError(message, error instanceof HttpError && error.status === 413 ? null : retry);
      })
      .then(function () {
        bubbleRef.node.classList.remove("streaming");
        if (reply) remember("assistant", reply);
        else removeNode(bubbleRef.node);
        setBusy(false);
        if (state.pendingRefresh) {
          state.pendingRefresh = false;
          return send(T.refresh);
        }
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim() || state.busy) return;
    input.value = "";
    send(text);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (form.requestSubmit) form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  // ---- feedback -----------------------------------------------------------------------------------------

  function feedback(course, verdict, card) {
    if (!state.sessionId) return Promise.resolve();
    var status = card.querySelector(".card-status");
    var buttons = card.querySelectorAll(".vote");
    Array.prototype.forEach.call(buttons, function (b) {
      b.disabled = true;
    });
    return api("POST", "/v1/sessions/" + encodeURIComponent(state.sessionId) + "/feedback", {
      course_id: course.course_id,
      verdict: verdict,
    })
      .then(function (body) {
        course.feedback = verdict;
        card.querySelector(".like").setAttribute("aria-pressed", verdict === "like" ? "true" : "false");
        card.querySelector(".dislike").setAttribute("aria-pressed", verdict === "dislike" ? "true" : "false");
        status.textContent = verdict === "like" ? T.liked : verdict === "taken" ? T.taken : T.disliked;
        if (verdict !== "like") card.classList.add("disliked");
        if (body && body.profile) applyProfile(body.profile, false);
        emit("feedback", { course_id: course.course_id, verdict: verdict });
        var refresh = body && typeof body.refresh === "boolean" ? body.refresh : verdict !== "like";
        if (refresh && state.busy) state.pendingRefresh = true; // asked for when the running turn ends
        else if (refresh) return send(T.refresh);
      })
      .catch(function () {
        status.textContent = T.feedbackError;
        showError(T.feedbackError, function () {
          feedback(course, verdict, card);
        });
      })
      .then(function () {
        Array.prototype.forEach.call(buttons, function (b) {
          b.disabled = false;
        });
      });
  }

  // ---- reset / restore ----------------------------------------------------------------------------------

  function greet() {
    addMessage("assistant", T.greeting);
  }

  function reset() {
    var old = state.sessionId;
    state.sessionId = null;
    state.transcript = [];
    state.profile = null;
    save();
    clear(log);
    state.cardsNode = null;
    state.candidatesNode = null;
    state.cardById = {};
    hideError();
    renderProfile(null);
    greet();
    input.focus();
    if (old) {
      return api("DELETE", "/v1/sessions/" + encodeURIComponent(old)).catch(function () {
        /* already gone or offline: the local copy is erased either way */
      });
    }
    return Promise.resolve();
  }

  resetBtn.addEventListener("click", function () {
    if (window.confirm(T.resetConfirm)) reset();
  });

  /** On load: replay the saved transcript and fetch the profile (side panel, choices, current cards). */
  function restore() {
    clear(log);
    greet();
    state.transcript.forEach(function (m) {
      addMessage(m.role === "user" ? "user" : "assistant", m.text);
    });
    renderProfile(state.profile);
    if (!state.sessionId) return Promise.resolve();
    return api("GET", "/v1/sessions/" + encodeURIComponent(state.sessionId))
      .then(function (profile) {
        applyProfile(profile, true);
        emit("restored", { messages: state.transcript.length });
      })
      .catch(function (error) {
        if (error instanceof HttpError && error.status === 404) {
          // the server no longer knows this conversation (deleted or expired): start over quietly
          state.sessionId = null;
          state.transcript = [];
          save();
          clear(log);
          greet();
          return;
        }
        showError(T.netError, restore);
      });
  }

  // ---- start --------------------------------------------------------------------------------------------

  function start() {
    document.body.appendChild(host);
    load();
    setProfileOpen(state.profileOpen);
    restore();
    if (script && script.getAttribute("data-open") === "true") openPanel();
  }

  window.CraftWidget = {
    loaded: true,
    open: openPanel,
    close: closePanel,
    toggleProfile: function (open) {
      setProfileOpen(typeof open === "boolean" ? open : !state.profileOpen);
    },
    send: function (text) {
      return send(text);
    },
    reset: reset,
    sessionId: function () {
      return state.sessionId;
    },
    element: host,
  };

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
