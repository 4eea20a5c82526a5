// Draws the live training loss on SELMA Train Expert nodes.
// The node pushes {node, step, total, loss} as "selma.train.progress" after every optimizer step.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "SelmaTrainExpert";
const EVENT = "selma.train.progress";
const CURVE_HEIGHT = 90;
const WIDGET = "selma_loss_curve";
const MAX_POINTS = 2000;

// Exponential moving average, so the curve reads through the noise of single steps.
function smooth(values, weight = 0.9) {
    const out = [];
    let last = values.length ? values[0] : 0;
    for (const v of values) {
        last = weight * last + (1 - weight) * v;
        out.push(last);
    }
    return out;
}

export function drawLossCurve(ctx, losses, x, y, width, height) {
    ctx.save();
    ctx.fillStyle = "rgba(0,0,0,0.35)";
    ctx.fillRect(x, y, width, height);
    if (losses.length > 1) {
        const lo = Math.min(...losses);
        const hi = Math.max(...losses);
        const span = hi - lo || 1;
        const plot = (values, colour) => {
            ctx.strokeStyle = colour;
            ctx.beginPath();
            values.forEach((v, i) => {
                const px = x + (i / (values.length - 1)) * width;
                const py = y + height - ((v - lo) / span) * (height - 4) - 2;
                i === 0 ? ctx.moveTo(px, py) : ctx.lineTo(px, py);
            });
            ctx.stroke();
        };
        plot(losses, "rgba(120,170,255,0.35)");
        plot(smooth(losses), "rgb(120,200,255)");
    }
    ctx.restore();
}

// The curve is a canvas widget of its own, below the others: the node's layout makes room for it, so no
// DOM widget (the multiline preview prompt) covers it.
function curveWidget(node) {
    return {
        name: WIDGET,
        type: WIDGET,
        value: null,
        serialize: false, // not part of the workflow's widget values
        options: { serialize: false }, // nor of the prompt sent to the server
        computeSize(width) {
            return [width ?? node.size[0], CURVE_HEIGHT + 8];
        },
        draw(ctx, drawNode, width, y) {
            const state = drawNode.selmaLoss;
            drawLossCurve(ctx, state?.losses ?? [], 10, y + 2, width - 20, CURVE_HEIGHT);
            ctx.fillStyle = "#ddd";
            ctx.font = "12px sans-serif";
            ctx.textBaseline = "alphabetic";
            if (!state) {
                ctx.fillText("loss curve: drawn while training", 14, y + 16);
                return;
            }
            const last = state.losses[state.losses.length - 1];
            ctx.fillText(`step ${state.step}/${state.total}  loss ${last?.toFixed(4) ?? "-"}`, 14, y + 16);
        },
    };
}

app.registerExtension({
    name: "Selma.TrainLoss",

    setup() {
        api.addEventListener(EVENT, ({ detail }) => {
            const node = app.graph?.getNodeById(Number(detail.node)) ?? app.graph?.getNodeById(detail.node);
            if (!node || node.comfyClass !== NODE_TYPE) return;
            const state = (node.selmaLoss ??= { losses: [], step: 0, total: 0 });
            if (detail.step <= state.step) state.losses = []; // a new run (or a resume) starts the curve again
            state.losses.push(detail.loss);
            if (state.losses.length > MAX_POINTS) state.losses.shift();
            state.step = detail.step;
            state.total = detail.total;
            node.setDirtyCanvas(true, false);
        });
    },

    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE_TYPE) return;
        const onNodeCreated = nodeType.prototype.onNodeCreated;
        nodeType.prototype.onNodeCreated = function () {
            const result = onNodeCreated?.apply(this, arguments);
            this.addCustomWidget(curveWidget(this));
            this.setSize(this.computeSize());
            return result;
        };
        const onRemoved = nodeType.prototype.onRemoved;
        nodeType.prototype.onRemoved = function () {
            delete this.selmaLoss;
            return onRemoved?.apply(this, arguments);
        };
    },
});
