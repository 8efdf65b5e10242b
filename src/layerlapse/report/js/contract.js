// The page's data contract, between the Python that writes report.html and the JavaScript that draws it: the
// payload (what page.py writes, pack.py's `payload`), the Bokeh models the page code drives, and the hook for tests
// and benchmarks, window.layerlapse. Types only: script.py does not join this file into the page (no code runs
// here, and every report would carry its bytes). tests/report/test_report.py holds the payload's keys to this file, and
// tests/report/test_report_browser.py the hook's and its state's.
//
// How the payload travels, so that 60,000 probe points over 16 frames with every thumbnail stay about 20 MB: JSON in
// a <script type="application/json" id="layerlapse-payload"> tag with the texts the page shows, whose arrays are
// PackedArray references to <script> tags of their own (id "layerlapse-blob-K": base64 of gzip, unpacked by the
// browser's DecompressionStream, payload.js). page.py's `page_payload` reads a written page back the same way.
//
// A point `i` is its index among the page's points: its row in the run folder's arrays, unless the page shows a
// subsample (past the size budget: then `rows` maps it back, and the page says so in a note).
//
// The page writes user text (class names, layer names, the items' texts) only as text: textContent, canvas text, or HTML-escaped
// before it reaches a Div.

// ---- the payload --------------------------------------------------------------------------------------------------

/**
 * An array in a blob tag of its own, little-endian.
 * @typedef {object} PackedArray
 * @property {number} blob - K of the tag "layerlapse-blob-K"
 * @property {"uint8"|"uint16"|"uint32"|"float32"} dtype
 * @property {number[]} shape
 * @property {"gzip"} encoding - base64 of gzip
 * @property {boolean} [delta] - uint16 frames stored as each frame's difference from the one before (mod 65536),
 *   each frame's low bytes before its high bytes (pack.py's `delta_planes`; payload.js's `undoDeltas`)
 */

/**
 * Every image once, as tiles of PNG atlases, each decoded when one of its images is first shown.
 * @typedef {object} Atlases
 * @property {number[]} sheets - the blob numbers of the atlases' PNGs (base64, not gzipped)
 * @property {number} perAtlas - images per atlas: image i lies in atlas floor(i / perAtlas)
 * @property {number[]} tile - [height, width] of an image, in pixels
 * @property {number} columns - tiles across an atlas
 * @property {number} scale - whole-pixel display scale
 */

/**
 * One set of points: the probe, or the test probe.
 * @typedef {object} PackedPoints
 * @property {number} n
 * @property {PackedArray} labels - (n,) uint16 class index
 * @property {PackedArray|null} rows - (n,) uint32 row in the run folder's arrays; null: point i is row i
 * @property {PackedArray|null} predicted - (frames, n) argmax class (uint8; uint16 past 256 classes)
 * @property {PackedArray|null} confidence - (frames, n) uint8: the predicted class's probability × 255
 * @property {Object<string, PackedArray>|null} dynamics - the probe's per-image dynamics, one byte each per point:
 *   confidence, variability (/ variabilityMax), correctness (× 255), firstLearned (snapshot + 1; 0: never),
 *   forgetting (events, clipped at 255), region (a Payload.regions code, 0 for none)
 * @property {Atlases|null} atlases - null without images
 * @property {PackedArray|null} texts - each point's text (its item's words, or a caption), where the run stored
 *   texts (the probe only): one JSON array of n strings, UTF-8, as a uint8 array (gzipped like the others; state.js
 *   parses it when a text is first shown: on hover, pin, selection and the strips, always as text)
 * @property {PackedArray} [datasetIndex] - (n,) uint32 each point's place in its dataset, where the run stored it
 *   (find.js finds items by it, dataset:N; hover and the CSV show it); null or absent otherwise
 * @property {Object<string, PackedArray>|null} extra - a comparison's per-point arrays, the points on the last
 *   axis: for run r, pred{r} and conf{r} (frames, n) as predicted and confidence, first{r} (first frame right + 1;
 *   0: never), learned{r} (1: right at the last frame) and forget{r} (forgetting events); for the pair of runs i < j and their layers a, b,
 *   overlap{i}_{j}_{a}_{b} (frames, n): shared nearest neighbours, 0..neighbourK (255: not measured)
 */

/**
 * A recorded layer the page can show: its map's frames, quantised to 16 bits within `limits`.
 * @typedef {object} PayloadLayer
 * @property {string} name
 * @property {number[]} limits - [x0, x1, y0, y1] over all its frames; code c is x0 + c / 65534 × (x1 − x0)
 * @property {PackedArray} probe - (frames, n, 2) uint16 codes, delta-stored; 65535: the frame does not draw it
 * @property {PackedArray|null} test - the same for the test points, or null
 * @property {string[]} figures - per frame, the map's faithfulness measures and notes in words
 */

/**
 * A measure the map can be coloured by besides class: the byte b of `dynamics[key]` is the value
 * b × scale + offset, or no value (drawn grey) where b is `missing`.
 * @typedef {object} ColorMeasure
 * @property {string} key
 * @property {string} label
 * @property {number} scale
 * @property {number} offset
 * @property {number|null} missing
 * @property {number} low - the colour bar's range
 * @property {number} high
 * @property {string} title - the colour bar's title
 * @property {string[]} [palette] - its own palette, else Payload.sequentialPalette
 * @property {"comparison"} [source] - computed by compare.js from the shown maps' runs and the snapshot (a
 *   comparison's colourings), not read from `dynamics`
 */

/**
 * An image of the hardest or most forgotten strip, as `layerlapse dynamics` lists it.
 * @typedef {object} StripItem
 * @property {number} i - the page's point
 * @property {string} label - true class
 * @property {string} predicted - final prediction
 * @property {number} confidence
 * @property {number} forgetting - forgetting events
 * @property {string} [caption] - a comparison's strip: the words under the thumbnail
 * @property {string} [title] - and on hover over it
 */

/**
 * A comparison of runs (layerlapse compare): each of the page's layers is one run's layer.
 * @typedef {object} Comparison
 * @property {{name: string, layerNames: string[], layers: number[]}[]} runs - each run's name, its layers' own
 *   names, and the page's layers that are its
 * @property {number[]} layerRun - the run of each of the page's layers
 * @property {number[]} layerOf - each of the page's layers as its run's layer index
 * @property {{left: number, right: number, cka: Array<Array<Array<number|null>>>}[]} pairs - per pair of runs
 *   (left < right), linear CKA per frame between every layer of the left and every layer of the right
 * @property {number} neighbourK
 * @property {number} neighbourItems - the items whose neighbour overlap was measured
 * @property {number} ckaItems - the items CKA was measured on
 * @property {Object<string, string>} strips - the comparison's strips (Payload.strips keys) and their headings
 * @property {string|null} initialCompare - the layer the second map shows as the page opens
 * @property {string} itemRule - how the runs' items were joined, in words
 * @property {string} snapshotRule - how their snapshots were matched, in words
 */

/**
 * A shown layer's measures at the page's frames (null where a frame was not measured).
 * @typedef {object} LayerMeasures
 * @property {Array<number|null>} knn - k-NN accuracy
 * @property {Array<number|null>} linear - linear-probe accuracy
 * @property {Array<number|null>} change - 1 − CKA to the previous frame
 * @property {Array<Array<number|null>>} cka - CKA between every pair of frames
 * @property {string} largest - the words naming its largest changes
 */

/**
 * The payload: what page.py writes into the "layerlapse-payload" tag.
 * @typedef {object} Payload
 * @property {string} title - the page's heading (kept selections are stored under it, with the page's address)
 * @property {string[]} classNames - the colours are Bokeh's, in the scatter's colour mapper
 * @property {number[]} epochs - the page's frames, 0..e
 * @property {PackedPoints} probe
 * @property {PackedPoints|null} test
 * @property {PayloadLayer[]} layers
 * @property {PackedArray|null} confusion - (frames, classes, classes) uint32 of the whole probe: rows true
 * @property {string[]} epochFigures - per frame, its accuracy and loss in words
 * @property {number[]} curveX - per frame, where the curves' marker stands (its epoch, or its optimizer step)
 * @property {string} snapshotWord - "epoch", or "snapshot" where snapshots are not plainly epochs
 * @property {{size: number, testSize: number, alpha: number}} marker - diameters in CSS pixels, and alpha
 * @property {{testEdge: string, misclassified: string, halo: string}} marks - the colours that set test and
 *   misclassified points apart (the PNG figures' own)
 * @property {number} testImages - the run's whole test set, of which the test points are the recorded probe
 * @property {number} variabilityMax - the variability a byte of 255 stands for
 * @property {ColorMeasure[]} colorBy
 * @property {string[]} sequentialPalette
 * @property {{swaps: Object<string, string>, page: string, tooltip: Object<string, string>}} dark - the dark scheme's
 *   colours for what the page colours itself (looks.js): each light colour's dark counterpart, the page, the tooltip
 * @property {{tab10: string[], colorblind: (string[]|null)}} palettes - the class colours the reader chooses
 *   between (looks.js): tab10, the frames' (the default), and a colour-blind-safe ten (null past ten classes)
 * @property {Object<string, number>} regions - cartography region -> its code in dynamics.region
 * @property {Object<string, string>} regionNames - cartography region -> its name
 * @property {object|null} regionCutOffs - the run's cut-offs (ambiguous_from, steady_below, easy_confidence,
 *   hard_confidence, images, swinging, follows_the_run), their `definition` in words and each region's `counts`
 * @property {number} selectionThumbnails - a selection lists the thumbnails of its first this many points
 * @property {"images"|"items"|"tokens"} itemWord - what the page calls the probe's points: "items" for a run with
 *   texts and no images, "tokens" for a run of tokens
 * @property {{mapSize: number[], compareSize: number[], sideWidth: number, sideWidthMax: number}} layout - the
 *   page's sizes for a laptop's window (style.py's); layout.js grows the maps to fill larger ones
 * @property {Object<string, StripItem[]>} strips - hardest and forgotten; a comparison's: disagree, leftOnly,
 *   rightOnly, seedDependent
 * @property {{layers: Object<string, LayerMeasures>, knnK: number, sampleSize: number}|null} measures
 * @property {Comparison|null} comparison - null on a run's own report
 */

// ---- the Bokeh models -----------------------------------------------------------------------------------------------

// The models page.py passes to layerlapseStart (`models`), each also found by name with
// Bokeh.documents[0].get_model_by_name(...): "layerlapse-map" (whose points are the point layer's), "-trail",
// "-epoch" (the slider), "-play", "-layer", "-show-test", "-misclassified", "-pinned", "-figures", "-confusion",
// "-class-legend", "-confusion-plot" with its cells' marks "-confusion-chosen" and "-confusion-cursor" (the keyboard's),
// "-accuracy", "-loss"; "-color-by", "-color-mapper", "-color-bar"; the second map's "-compare" (its select),
// "-compare-map", "-compare-trail"; "-data-map", "-data-map-colors", "-data-map-color-bar", "-region", "-selection",
// "-hardest", "-forgotten" (and a comparison's "-disagree", …); a comparison's "-compare-table",
// "-compare-curves" (its source) and "-compare-curves-plot", "-compare-runs"; "-cka", "-cka-cells", "-measures", "-measures-source", "-changes" and the markers
// "-measures-marker", "-cka-marker-height", "-cka-marker-width"; "-side", the column beside the map, which layout.js
// widens in a wide window; "-root" (the page's whole layout, which layout.js narrows in a narrow window) and
// "-header"; "-find" (the find box, find.js) and "-palette" (the class colours, looks.js); the selection's tools
// (keep.js): "-selection-csv", "-selection-copy", "-keep-name", "-kept".

// ---- the hook for tests and benchmarks ----------------------------------------------------------------------------

/**
 * What the page shows now: layerlapse.state().
 * @typedef {object} State
 * @property {number} epoch
 * @property {string} layer
 * @property {string[]} layers
 * @property {number} total - the page's probe points
 * @property {number} shown - the probe points of classes not hidden
 * @property {number} drawn - those with a position this frame
 * @property {number} testShown
 * @property {boolean} testVisible
 * @property {number} trail - the rows of the pinned point's trajectory (one per frame)
 * @property {{set: string, i: number}|null} pinned
 * @property {boolean} webgl - whether the browser gave the map's point layer WebGL
 * @property {"webgl"|"cpu"} renderer - what draws the points ("cpu": without WebGL, or with a software one)
 * @property {boolean} playing
 * @property {string} colorBy
 * @property {string[]} colorOptions
 * @property {number[]|null} selected - the selected points, sorted, or null
 * @property {string} region - the cartography region that selected them ("none" for a drawn selection)
 * @property {{true: number, predicted: number, epoch: number}|null} selectedCell - the confusion matrix's cell
 *   that selected them (its items of that true class predicted as that class at that epoch), else null
 * @property {string|null} compare - the second map's layer, or null
 * @property {number} compareDrawn
 * @property {number|null} panelsEpoch - the epoch the panels beside the map show (they follow once the slider rests)
 * @property {number|null} paintedEpoch - the epoch the maps last painted
 * @property {number[]} hoverRings - per map, 1 where it rings the point hovered on the other map
 * @property {string} palette - the class colours shown: "tab10" or "colorblind"
 * @property {boolean} dark - whether the page shows its dark scheme (the system's prefers-color-scheme)
 * @property {string|null} selectionLabel - what else chose the selection, in words ("find “true:3”", "kept “x”",
 *   "from the link"), else null
 * @property {string|null} note - the line under the selection's heading: what the last find, copy, download or keep
 *   did, else null
 */

/**
 * A comparison's page now (layerlapse.comparison(); null on a run's own report).
 * @typedef {object} ComparisonState
 * @property {string[]} runs - the names of the runs the two maps show (left, right)
 * @property {number[]} layers - their layers, as each run's layer index (left, right)
 * @property {number|null} cka - CKA of the two shown layers at the shown frame
 * @property {string} table - the text of the panel of CKA, agreement and confusion difference
 * @property {Object<string, number[]>} curves - the shown pair's measures over the frames
 */

/**
 * What a map draws now, in drawing order (layerlapse.points).
 * @typedef {object} DrawnPoints
 * @property {number[]} point
 * @property {number[]} x - data position
 * @property {number[]} y
 * @property {number[]} alpha
 * @property {number[]} outline
 * @property {Array<number|null>} value - the value the point's colour comes from
 */

/**
 * window.layerlapse. A map is 0 (the shown layer), 1 (the compared one) or "dataMap"; a set "probe" or "test".
 * window.layerlapseReady turns true with `ready`.
 * @typedef {object} LayerlapseHook
 * @property {boolean} ready - true in the animation frame after the one that painted the first draw
 * @property {{start: number, parsed: number, decoded: number, drawn: number, ready: number}} timings -
 *   performance.now() when the page code started, parsed and decoded the payload, drew, and was ready
 * @property {function(): State} state
 * @property {function(): (ComparisonState|null)} comparison
 * @property {function(): number} snapshots - how many snapshots (frames) the page holds; on the live page
 *   (`layerlapse watch`) it grows as the run commits them
 * @property {function((number|string)=, string=): DrawnPoints} points - points(map = 0, set = "probe")
 * @property {function(number): void} setEpoch
 * @property {function(string): void} setLayer
 * @property {function(string|null): void} setCompare
 * @property {function(string): void} setColorBy
 * @property {function(Iterable<number>|null): void} select
 * @property {function(string): void} selectRegion
 * @property {function(object, boolean, (number|string)): void} selectGeometry - a box or lasso as Bokeh's select
 *   tools give it: (geometry, final, map)
 * @property {function(object): void} tapConfusion - a Bokeh tap event on the confusion matrix (x: predicted,
 *   y: true, data units): a cell selects its items at the shown epoch; the same cell again, or off the cells, lets go
 * @property {function(number, number): void} chooseCell - chooseCell(true, predicted): what a click on that cell does
 * @property {function(number, number): ({x: number, y: number}|null)} confusionCellPosition -
 *   confusionCellPosition(true, predicted): the cell's centre in the window (CSS pixels), null without a matrix
 * @property {function(number, string=): void} pin - pin(i, set = "probe")
 * @property {function(): void} unpin
 * @property {function(): void} dispose - takes the page's listeners, tooltip, timers and WebGL contexts away (the
 *   live page calls it on the page it replaces)
 * @property {function(): void} togglePlay
 * @property {function(): void} redraw
 * @property {function(object=): void} repaint - paints in the next animation frame
 * @property {function(object|null, number=): void} hover - a Bokeh mouse event on map k, or null
 * @property {function(object, number=): void} tap - a Bokeh tap event on map k
 * @property {function(number=): HTMLCanvasElement} mapCanvas - the point layer's canvas of map k
 * @property {function(): number} paintedPixels - the map painted now: how many of its canvas's pixels hold a point
 * @property {function(number, string=, number=): ({x: number, y: number}|null)} clientPosition -
 *   clientPosition(i, set = "probe", map = 0): the point's place in the window (CSS pixels), null if not drawn
 * @property {function(string, {pin: boolean}=): void} find - what the find box does with a query (typing: once the
 *   keys rest; with pin, at once, pinning the first match)
 * @property {function(string): void} setPalette - "tab10" or "colorblind"
 * @property {function(): void} downloadSelection - the selection's rows as a CSV download
 * @property {function(): Promise<void>} copySelection - the selection's probe indices to the clipboard
 * @property {function(string): void} keepSelection - keep the selection under a name, in this browser
 * @property {function(string): void} recallSelection - select a kept selection again, by its name
 * @property {function(): string} selectionCsv - the CSV the download holds
 * @property {function(): string} selectionIds - the text the copy puts on the clipboard
 * @property {function(): string} viewFragment - the view as the address's fragment holds it (without "#")
 * @property {function(string): void} applyFragment - open the view a "#..." fragment names (what a link does)
 * @property {function(): string[]} classColors - the class colours shown
 */
