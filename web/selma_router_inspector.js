// Draws the router heatmap of SELMA Router Inspector nodes, interactively.
// The node's ui payload ("selma_router", see nodes/inspection.py ui_payload): layers, short_layers, steps,
// timesteps, prompts, branches, num_styles, num_experts and probabilities[prompt][step][branch][layer][route].
// Hover a cell: layer, step and every route's probability. Click the chips: cond/uncond and the prompt.
// Everything lives on the node (a canvas widget and node callbacks): no global listeners to remove.
import { app } from "../../scripts/app.js";

const NODE_TYPE = "SelmaRouterInspector";
const UI_KEY = "selma_router";
const WIDGET = "selma_router_heatmap";
const PAD = 8;
const ROW = 20; // controls row and legend rows
const GUTTER = 96; // layer labels
const MAX_TOOLTIP_ROUTES = 8;
// matplotlib's tab10 and tab20 palettes.
const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const TAB20 = [
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
];

// The same colours as the PNG heatmap (selma/router_plots.py): tab10, tab20, then evenly spaced hues (hsv).
export function routeColour(route, routes) {
    if (routes <= 10) return TAB10[route];
    if (routes <= 20) return TAB20[route];
    return `hsl(${Math.round((360 * route) / routes)}, 100%, 50%)`;
}

const rgbCache = new Map();

function rgb(colour) {
    if (colour.startsWith("#")) return [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
    if (!rgbCache.has(colour)) {
        const probe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
        probe.fillStyle = colour;
        probe.fillRect(0, 0, 1, 1);
        rgbCache.set(colour, Array.from(probe.getImageData(0, 0, 1, 1).data.slice(0, 3)));
    }
    return rgbCache.get(colour);
}

// A cell's colour: the preferred route's colour blended with white by the router's confidence,
// (max p - 1/n) / (1 - 1/n): white for a uniform router, full colour for a one-hot one (as the PNG heatmap).
export function cellColour(probs, numStyles) {
    let best = 0;
    for (let r = 1; r < probs.length; r++) if (probs[r] > probs[best]) best = r;
    const n = numStyles;
    const confidence = n > 1 ? Math.min(1, Math.max(0, (probs[best] - 1 / n) / (1 - 1 / n))) : 1;
    const [red, green, blue] = rgb(routeColour(best, probs.length)).map((c) => Math.round(255 - confidence * (255 - c)));
    return `rgb(${red},${green},${blue})`;
}

export function routeLabel(route, data) {
    if (data.num_experts <= 1) return `style ${route}`;
    return `expert ${Math.floor(route / data.num_styles)} style ${route % data.num_styles}`;
}

function cellHeight(layers) {
    return Math.max(4, Math.min(14, Math.floor(260 / Math.max(layers, 1))));
}

function legendRows(data, width) {
    const routes = data.probabilities[0][0][0][0].length;
    const perRow = Math.max(1, Math.floor((width - 2 * PAD) / 86));
    return Math.ceil(routes / perRow);
}

export function panelHeight(data, width) {
    if (!data) return 24;
    return PAD + ROW + 4 + data.layers.length * cellHeight(data.layers.length) + 16 + legendRows(data, width) * 16 + PAD;
}

function clip(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    while (text.length > 1 && ctx.measureText(text + "…").width > width) text = text.slice(0, -1);
    return text + "…";
}

function chip(ctx, state, x, y, label, active, action) {
    ctx.font = "11px sans-serif";
    const w = ctx.measureText(label).width + 12;
    ctx.fillStyle = active ? "#4a6fa5" : "#333";
    ctx.strokeStyle = "#666";
    ctx.beginPath();
    ctx.roundRect ? ctx.roundRect(x, y, w, ROW - 4, 4) : ctx.rect(x, y, w, ROW - 4);
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = "#eee";
    ctx.textBaseline = "middle";
    ctx.fillText(label, x + 6, y + (ROW - 4) / 2);
    state.hits.push({ x, y, w, h: ROW - 4, action });
    return x + w + 4;
}

function drawTooltip(ctx, state, data, width) {
    const { layer, step } = state.hover;
    const probs = data.probabilities[state.prompt][step][state.branch][layer];
    const order = probs.map((p, r) => r).sort((a, b) => probs[b] - probs[a]);
    const shown = order.slice(0, MAX_TOOLTIP_ROUTES);
    const lines = [
        data.short_layers[layer],
        `step ${step + 1}/${data.steps} · t=${data.timesteps[step]} · ${data.branches[state.branch]}`,
    ];
    ctx.font = "11px sans-serif";
    const boxW = Math.min(width - 2 * PAD, Math.max(200, ...lines.map((l) => ctx.measureText(l).width + 16)));
    const boxH = 8 + (lines.length + shown.length + (order.length > shown.length ? 1 : 0)) * 14;
    let x = state.mouse[0] + 12;
    let y = state.mouse[1] + 12;
    if (x + boxW > width - PAD) x = Math.max(PAD, state.mouse[0] - boxW - 12);
    if (y + boxH > state.bottom) y = Math.max(state.top, state.mouse[1] - boxH - 12);
    ctx.fillStyle = "rgba(20,20,20,0.92)";
    ctx.strokeStyle = "#888";
    ctx.fillRect(x, y, boxW, boxH);
    ctx.strokeRect(x, y, boxW, boxH);
    ctx.textBaseline = "top";
    let ty = y + 4;
    ctx.fillStyle = "#fff";
    for (const line of lines) {
        ctx.fillText(clip(ctx, line, boxW - 12), x + 6, ty);
        ty += 14;
    }
    for (const r of shown) {
        ctx.fillStyle = routeColour(r, probs.length);
        ctx.fillRect(x + 6, ty + 2, 10, 10);
        ctx.fillRect(x + 130, ty + 3, Math.max(1, (boxW - 140) * probs[r]), 8);
        ctx.fillStyle = r === order[0] ? "#fff" : "#ccc";
        ctx.fillText(`${routeLabel(r, data)}  ${probs[r].toFixed(3)}`, x + 20, ty);
        ty += 14;
    }
    if (order.length > shown.length) {
        ctx.fillStyle = "#aaa";
        ctx.fillText(`… ${order.length - shown.length} more`, x + 20, ty);
    }
}

// The whole panel, in node coordinates starting at y; records hit boxes and the heatmap's geometry in `state`.
export function drawPanel(ctx, state, width, y) {
    const data = state.data;
    state.hits = [];
    ctx.save();
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "middle";
    if (!data) {
        ctx.fillStyle = "#999";
        ctx.fillText("run the node to see its router here", PAD, y + 12);
        ctx.restore();
        return;
    }
    let x = PAD;
    const top = y + PAD;
    data.branches.forEach((name, b) => {
        x = chip(ctx, state, x, top, name, state.branch === b, () => (state.branch = b));
    });
    x += 6;
    const count = data.prompts.length;
    x = chip(ctx, state, x, top, "◀", false, () => (state.prompt = (state.prompt + count - 1) % count));
    x = chip(ctx, state, x, top, `${state.prompt + 1}/${count}`, true, () => {});
    x = chip(ctx, state, x, top, "▶", false, () => (state.prompt = (state.prompt + 1) % count));
    ctx.fillStyle = "#ddd";
    ctx.fillText(clip(ctx, `"${data.prompts[state.prompt]}"`, width - x - PAD), x + 4, top + (ROW - 4) / 2);

    const layers = data.layers.length;
    const steps = data.steps;
    const cellH = cellHeight(layers);
    const gridX = PAD + GUTTER;
    const gridY = top + ROW + 4;
    const cellW = (width - gridX - PAD) / steps;
    const grid = data.probabilities[state.prompt];
    for (let s = 0; s < steps; s++) {
        for (let l = 0; l < layers; l++) {
            ctx.fillStyle = cellColour(grid[s][state.branch][l], data.num_styles);
            ctx.fillRect(gridX + s * cellW, gridY + l * cellH, Math.ceil(cellW), cellH);
        }
    }
    ctx.strokeStyle = "#555";
    ctx.strokeRect(gridX, gridY, cellW * steps, cellH * layers);
    // Layer labels: every one that fits (at least 9 px apart).
    ctx.fillStyle = "#bbb";
    ctx.font = `${Math.min(10, Math.max(7, cellH - 1))}px sans-serif`;
    const every = Math.max(1, Math.ceil(9 / cellH));
    for (let l = 0; l < layers; l += every) {
        ctx.fillText(clip(ctx, data.short_layers[l], GUTTER - 4), PAD, gridY + l * cellH + cellH / 2);
    }
    const axisY = gridY + layers * cellH + 8;
    ctx.font = "10px sans-serif";
    ctx.fillText("step 1", gridX, axisY);
    const last = `${steps}`;
    ctx.fillText(last, gridX + steps * cellW - ctx.measureText(last).width, axisY);
    // Legend: one swatch per route.
    const routes = grid[0][0][0].length;
    const perRow = Math.max(1, Math.floor((width - 2 * PAD) / 86));
    for (let r = 0; r < routes; r++) {
        const lx = PAD + (r % perRow) * 86;
        const ly = axisY + 16 + Math.floor(r / perRow) * 16;
        ctx.fillStyle = routeColour(r, routes);
        ctx.fillRect(lx, ly - 5, 10, 10);
        ctx.fillStyle = "#ccc";
        ctx.fillText(data.num_experts > 1 ? `e${Math.floor(r / data.num_styles)} s${r % data.num_styles}` : `style ${r}`, lx + 14, ly);
    }
    state.grid = { x: gridX, y: gridY, cellW, cellH, steps, layers };
    state.top = y;
    state.bottom = y + panelHeight(data, width);
    if (state.hover) drawTooltip(ctx, state, data, width);
    ctx.restore();
}

// The cell under a node-relative point, or null.
export function cellAt(state, pos) {
    const g = state.grid;
    if (!g) return null;
    const step = Math.floor((pos[0] - g.x) / g.cellW);
    const layer = Math.floor((pos[1] - g.y) / g.cellH);
    if (step < 0 || step >= g.steps || layer < 0 || layer >= g.layers) return null;
    return { step, layer };
}

function heatmapWidget(node) {
    return {
        name: WIDGET,
        type: WIDGET,
        value: null,
        serialize: false, // not part of the workflow's widget values
        options: { serialize: false }, // nor of the prompt sent to the server
        computeSize(width) {
            return [width ?? node.size[0], panelHeight(node.selmaRouter?.data, width ?? node.size[0])];
        },
        draw(ctx, drawNode, width, y) {
            const state = drawNode.selmaRouter;
            if (state) drawPanel(ctx, state, width, y);
        },
        // LiteGraph hands clicks inside a widget to its mouse() (pointerdown, then pointerup), not to the node.
        mouse(event, pos, clickedNode) {
            if (event.type !== "pointerdown" && event.type !== "mousedown") return false;
            return clickChip(clickedNode.selmaRouter, pos);
        },
    };
}

// Runs the chip under a node-relative point; true if there was one (the canvas then redraws).
export function clickChip(state, pos) {
    const hit = state?.hits.find((h) => pos[0] >= h.x && pos[0] <= h.x + h.w && pos[1] >= h.y && pos[1] <= h.y + h.h);
    if (!hit) return false;
    hit.action();
    state.hover = null;
    return true;
}

app.registerExtension({
    name: "Selma.RouterInspector",

    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE_TYPE) return;
        const proto = nodeType.prototype;

        const onNodeCreated = proto.onNodeCreated;
        proto.onNodeCreated = function () {
            const result = onNodeCreated?.apply(this, arguments);
            this.selmaRouter = { data: null, prompt: 0, branch: 0, hover: null, hits: [] };
            this.addCustomWidget(heatmapWidget(this));
            return result;
        };

        const onExecuted = proto.onExecuted;
        proto.onExecuted = function (message) {
            const result = onExecuted?.apply(this, arguments);
            const data = message?.[UI_KEY]?.[0];
            if (data && this.selmaRouter) {
                const state = this.selmaRouter;
                state.data = data;
                state.prompt = Math.min(state.prompt, data.prompts.length - 1);
                state.hover = null;
                const width = Math.max(this.size[0], 480);
                this.setSize([width, Math.max(this.size[1], this.computeSize([width])[1])]);
                this.setDirtyCanvas(true, true);
            }
            return result;
        };

        const onMouseMove = proto.onMouseMove;
        proto.onMouseMove = function (e, pos) {
            const result = onMouseMove?.apply(this, arguments);
            const state = this.selmaRouter;
            if (state?.data) {
                const cell = cellAt(state, pos);
                const changed = cell?.step !== state.hover?.step || cell?.layer !== state.hover?.layer;
                state.hover = cell;
                state.mouse = [pos[0], pos[1]];
                if (changed || cell) this.setDirtyCanvas(true, false);
            }
            return result;
        };

        const onMouseLeave = proto.onMouseLeave;
        proto.onMouseLeave = function () {
            const result = onMouseLeave?.apply(this, arguments);
            if (this.selmaRouter?.hover) {
                this.selmaRouter.hover = null;
                this.setDirtyCanvas(true, false);
            }
            return result;
        };

        const onRemoved = proto.onRemoved;
        proto.onRemoved = function () {
            delete this.selmaRouter; // the widget's draw() finds no state and draws nothing
            return onRemoved?.apply(this, arguments);
        };
    },
});
