// Local chat client: pick who you are, pick a chat, type. Polls for new lines (bot messages included).
"use strict";
const state = { people: [], groups: [], me: null, conv: null, gen: 0, after: {}, unread: {}, names: {} };
const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function myConversations() {
  if (!state.me) return [];
  const me = state.people.find((p) => p.sender_id === state.me);
  const groups = state.groups.filter((g) => !me || g.conversation_id === "group:" + me.org || me.roles.includes("管理员"));
  return [...groups, { conversation_id: "dm:" + state.me, title: "与党建助手单聊" }];
}

function renderConvs() {
  const ul = $("convs");
  ul.innerHTML = "";
  for (const c of myConversations()) {
    const li = document.createElement("li");
    li.textContent = c.title;
    if (state.unread[c.conversation_id]) {
      const b = document.createElement("span");
      b.className = "badge";
      b.textContent = state.unread[c.conversation_id];
      li.appendChild(b);
    }
    if (c.conversation_id === state.conv) li.className = "active";
    li.onclick = () => openConv(c.conversation_id, c.title);
    ul.appendChild(li);
  }
}

function openConv(id, title) {
  state.gen += 1; // polls started before this belong to the old view
  state.conv = id;
  state.unread[id] = 0;
  $("title").textContent = title;
  $("log").innerHTML = "";
  state.after[id] = 0;
  renderConvs();
  poll(id);
}

function addLine(m) {
  const li = document.createElement("li");
  const mine = m.sender_id === state.me;
  li.className = mine ? "mine" : m.sender_id === "bot" ? "bot" : "";
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = (m.sender_id === "bot" ? "党建助手" : state.names[m.sender_id] || m.sender_id) + " · " + new Date(m.at).toLocaleString("zh-CN");
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  // A picture from the bot arrives as a "[图片] name.png" line plus image_url: show the picture instead.
  const text = m.image_url ? m.text.replace(/^\[图片\] \S+\.png$/m, "").trim() : m.text;
  // Mentions carry sender ids (mobile numbers); show the names people know.
  bubble.textContent = text.replace(/@(\S+)/g, (all, id) => (state.names[id] ? "@" + state.names[id] : all));
  if (m.image_url) {
    const img = document.createElement("img");
    img.className = "chart";
    img.src = m.image_url;
    img.alt = "统计图（图片已清理或无法显示）";
    img.onload = () => { $("log").scrollTop = $("log").scrollHeight; };
    const link = document.createElement("a");
    link.href = m.image_url;
    link.target = "_blank";
    link.appendChild(img);
    bubble.appendChild(link);
  }
  li.append(who, bubble);
  $("log").appendChild(li);
  $("log").scrollTop = $("log").scrollHeight;
}

async function poll(id) {
  try {
    const gen = state.gen;
    const data = await api(`/api/local/messages?conversation_id=${encodeURIComponent(id)}&after=${state.after[id] || 0}`);
    if (gen !== state.gen) return;
    for (const m of data.messages) {
      if (m.seq <= (state.after[id] || 0)) continue; // a concurrent poll (send + timer) showed it already
      state.after[id] = m.seq;
      if (id === state.conv) addLine(m);
      else state.unread[id] = (state.unread[id] || 0) + 1;
    }
  } catch (e) { console.warn(e); }
}

async function tick() {
  for (const c of myConversations()) {
    if (c.conversation_id !== state.conv && state.after[c.conversation_id] === undefined) {
      // Skip history of chats not opened yet: only count what arrives from now on.
      const data = await api(`/api/local/messages?conversation_id=${encodeURIComponent(c.conversation_id)}&after=0`).catch(() => ({ messages: [] }));
      state.after[c.conversation_id] = data.messages.length ? data.messages[data.messages.length - 1].seq : 0;
      continue;
    }
    await poll(c.conversation_id);
  }
  renderConvs();
}

async function init() {
  const dir = await api("/api/local/directory");
  state.people = dir.people;
  state.groups = dir.groups;
  for (const p of dir.people) state.names[p.sender_id] = p.name;
  const sel = $("who");
  for (const p of dir.people) {
    const o = document.createElement("option");
    o.value = p.sender_id;
    o.textContent = `${p.name}（${p.org}${p.roles.filter((r) => r !== "党员").length ? "·" + p.roles.filter((r) => r !== "党员").join("、") : ""}）`;
    sel.appendChild(o);
  }
  const saved = localStorage.getItem("dj-me");
  state.me = dir.people.some((p) => p.sender_id === saved) ? saved : (dir.people[0] || {}).sender_id;
  sel.value = state.me;
  sel.onchange = () => { state.me = sel.value; localStorage.setItem("dj-me", state.me); state.after = {}; state.unread = {}; const c = myConversations()[0]; openConv(c.conversation_id, c.title); };
  const first = myConversations()[0];
  if (first) openConv(first.conversation_id, first.title);
  setInterval(tick, 1500);
}

$("send").onsubmit = async (ev) => {
  ev.preventDefault();
  const text = $("text").value;
  if (!text.trim() || !state.conv) return;
  $("text").value = "";
  try {
    await api("/api/local/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ conversation_id: state.conv, sender_id: state.me, text }),
    });
  } catch (e) { alert("发送失败：" + e.message); }
  await tick();
};

init().catch((e) => { $("title").textContent = "加载失败：" + e.message; });
