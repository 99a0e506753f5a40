// facedb's web page: the few things HTML cannot do alone. The page works without it.
"use strict";

// A drop zone: photos dropped on it become the files of its file input (the form then
// posts them as multipart, like files chosen with the button); the chosen names are listed.
function setUpDropZone(zone) {
  const input = zone.querySelector("input[type=file]");
  const list = zone.querySelector(".chosen");
  if (!input) return;
  const show = () => {
    list.replaceChildren(...Array.from(input.files).map((f) => {
      const item = document.createElement("li");
      item.textContent = f.name;
      return item;
    }));
  };
  input.addEventListener("change", show);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = new DataTransfer();
    for (const f of e.dataTransfer.files) {
      if (f.type.startsWith("image/") && (input.multiple || files.items.length === 0)) files.items.add(f);
    }
    input.files = files.files;
    show();
  });
}

// Forms that erase something ask first (data-confirm holds the question).
function setUpConfirm(form) {
  form.addEventListener("submit", (e) => {
    if (!window.confirm(form.dataset.confirm)) e.preventDefault();
  });
}

// A search box that hides the cards whose data-name does not contain what is typed.
function setUpFilter(box) {
  box.addEventListener("input", () => {
    const text = box.value.trim().toLowerCase();
    for (const card of document.querySelectorAll(box.dataset.filter)) {
      card.hidden = text !== "" && !card.dataset.name.includes(text);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-drop]").forEach(setUpDropZone);
  document.querySelectorAll("form[data-confirm]").forEach(setUpConfirm);
  document.querySelectorAll("input[data-filter]").forEach(setUpFilter);
});
