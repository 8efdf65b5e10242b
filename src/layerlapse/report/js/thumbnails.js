// Thumbnails: PNG atlases of `perAtlas` images each, decoded when one of their images is first needed.
// A part of the report's one closure, layerlapseShow(models, data, arrays, timings): script.py joins the parts
// in its fixed order inside that function, so they share its constants, state and functions by scope.

// `sheetText(blob)` gives an atlas's PNG as base64 (the notebook widget's come from its model's buffers); by default
// each atlas's <script> tag is read now, when the page starts, so that the live page can put the next page's tags
// in their place while this page is still shown.
function makeThumbnails(atlases, sheetText = null) {
  if (!atlases) return null;
  const [height, width] = atlases.tile;
  const sheets = new Map();  // atlas number -> {image, ready}
  const cache = new Map();
  const texts = sheetText ? null : atlases.sheets.map(
    (blob) => document.getElementById(`layerlapse-blob-${blob}`).textContent);
  const sheet = (k) => {
    if (!sheets.has(k)) {
      const image = new Image();
      const ready = new Promise((resolve) => {
        image.onload = () => resolve(true);
        image.onerror = () => resolve(false);
      });
      image.src = "data:image/png;base64," + (texts ? texts[k] : sheetText(atlases.sheets[k])).trim();
      sheets.set(k, {image, ready});
    }
    return sheets.get(k);
  };
  return {
    width: width * atlases.scale, height: height * atlases.scale,
    // a promise that resolves once the atlases of these images are decoded (true: all loaded)
    load(indices) {
      const needed = new Set(Array.from(indices, (i) => Math.floor(i / atlases.perAtlas)));
      return Promise.all(Array.from(needed, (k) => sheet(k).ready)).then((loaded) => loaded.every(Boolean));
    },
    // image i as a data URI, or null until its atlas is decoded (the call starts decoding it)
    url(i) {
      const k = Math.floor(i / atlases.perAtlas);
      const {image} = sheet(k);
      if (!image.complete || !image.naturalWidth) return null;
      if (!cache.has(i)) {
        if (cache.size > 4000) cache.clear();
        const canvas = document.createElement("canvas");
        canvas.width = this.width;
        canvas.height = this.height;
        const context = canvas.getContext("2d");
        context.imageSmoothingEnabled = false;  // crisp pixels, like the frames' samples figure
        const tile = i % atlases.perAtlas;
        context.drawImage(image, (tile % atlases.columns) * width, Math.floor(tile / atlases.columns) * height,
                          width, height, 0, 0, this.width, this.height);
        cache.set(i, canvas.toDataURL("image/png"));
      }
      return cache.get(i);
    },
  };
}

// A thumbnail as markup for a Div's text (a data URI made here, never user text), or "" before the atlas loads.
function thumbnailHtml(set, i, size) {
  const thumbnails = sets[set].thumbnails;
  const url = thumbnails && thumbnails.url(i);
  return url ? `<img src="${url}" width="${size}" height="${size}" style="image-rendering:pixelated">` : "";
}

function thumbnailElement(set, i) {
  const thumbnails = sets[set].thumbnails;
  const url = thumbnails && thumbnails.url(i);
  if (!url) return null;
  const img = document.createElement("img");
  img.src = url;
  img.width = thumbnails.width;
  img.height = thumbnails.height;
  img.style.imageRendering = "pixelated";
  img.className = "layerlapse-thumbnail";
  return img;
}

// A clickable thumbnail (or, without images, the point's number) that pins point i; `caption` is escaped here.
function pickHtml(i, size, title, caption) {
  const image = thumbnailHtml("probe", i, size) || `<span style="font-size:10px">#${rowOf("probe", i)}</span>`;
  const below = caption ? `<div style="font-size:10px;line-height:11px">${escapeHtml(caption)}</div>` : "";
  return `<div class="layerlapse-pick" data-point="${i}" title="${escapeHtml(title)}" ` +
         `style="cursor:pointer;text-align:center;width:${size + 4}px">${image}${below}</div>`;
}

// A clickable row that pins point i, for a run with texts: its caption, its text cut to `lines` lines (the whole of
// it on hover over the row) and, where the run has images, its thumbnail beside; every text is escaped here.
function textPickHtml(i, title, caption, lines = 2) {
  const text = textOf("probe", i) || "";
  const image = thumbnailHtml("probe", i, 28);
  const above = caption ? `<div style="font-size:10px;line-height:12px;opacity:0.75">${escapeHtml(caption)}</div>` : "";
  return `<div class="layerlapse-pick layerlapse-pick-text" data-point="${i}" ` +
         `title="${escapeHtml(text ? `${title}\n${text}` : title)}" style="cursor:pointer;display:flex;gap:5px;` +
         `align-items:flex-start;padding:2px 3px;border-bottom:1px solid #eee">${image}` +
         `<div style="min-width:0;flex:1">${above}<div class="layerlapse-item-text" style="font-size:12px;` +
         `line-height:15px;display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:${lines};` +
         `overflow:hidden;overflow-wrap:anywhere">${escapeHtml(text)}</div></div></div>`;
}

// Draw again once the thumbnails of these probe images are decoded, if some were not yet.
function whenThumbnailsLoad(indices, draw) {
  const thumbnails = sets.probe.thumbnails;
  if (thumbnails && indices.some((i) => !thumbnails.url(i))) {
    thumbnails.load(indices).then((loaded) => { if (loaded) draw(); });
  }
}
