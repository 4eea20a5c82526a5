"""The fake OpenAI server's default reply: a numbered list of made-up, mutually different prompts."""

from __future__ import annotations

import random
import re

# Made-up prompts: each slot draws from its own word list and the sentence shapes differ, so two prompts
# share few words and survive a ROUGE-L diversity filter (SELMA keeps a prompt iff max ROUGE-L <= 0.8).
_WORDS = {
    "adj": "crimson velvet rusty glassy ancient tiny enormous foggy neon wooden marble frozen golden paper "
    "striped dusty glowing hollow silky bronze muddy pastel cracked woolen chrome spotted mossy amber".split(),
    "noun": "giraffe lighthouse teapot bicycle octopus cathedral violin cactus robot lantern kayak owl "
    "typewriter dragon pumpkin tram fox umbrella anchor beehive telescope piano squirrel windmill tortoise".split(),
    "verb": "balancing juggling painting chasing guarding carrying repairing inspecting hugging climbing "
    "sniffing polishing towing reading stacking watering sketching feeding tossing unwrapping".split(),
    "place": "harbor desert attic rooftop orchard canyon subway library glacier bazaar greenhouse swamp "
    "stadium monastery laundromat volcano bakery lagoon hangar meadow".split(),
    "style": "watercolor, soft light|35mm photo, dusk|oil painting, impasto|isometric render|charcoal sketch|"
    "ukiyo-e print|cinematic still, rain|claymation|pixel art|studio portrait, rim light|tilt-shift photo|"
    "pencil drawing, cross-hatching|low-poly 3D|vintage postcard|infrared photograph".split("|"),
}
_SHAPES = (
    "{adj} {noun} {verb} {adj2} {noun2} in {place}, {style}",
    "{count} {noun}s beside {adj} {noun2} at {place}",
    "Inside {place}, {adj} {noun} {verb} {noun2}; {style}",
    "{noun2} under {adj} {noun}, {place} backdrop",
    "close-up: {noun} {verb} {count} {adj2} {noun2}s",
    "{style} of {adj2} {noun2} near {place}, {noun} watching",
)
_COUNTS = ("two", "three", "four", "five", "six", "seven")
_ASK_RE = re.compile(r"\b(?:write|generate)\s+(\d{1,4})\b", re.IGNORECASE)


def request_text(body: dict) -> str:
    """The text a completion request sent: its chat messages' contents (the text parts of a list content),
    or its legacy prompt."""
    if "messages" in body:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        return "\n".join(_content_text(m.get("content", "")) for m in messages)
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else "\n".join(map(str, prompt))


def _content_text(content: object) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def made_up_prompts(body: dict, rng: random.Random | None = None) -> str:
    """A numbered list (`1. ...`) of N made-up, mutually different prompts; N comes from 'Write 20' in the
    prompt (first match), else 20."""
    rng = rng or random.Random()
    match = _ASK_RE.search(request_text(body))
    n = int(match.group(1)) if match else 20
    lines, seen = [], set()
    while len(lines) < n:
        words = {k: rng.choice(v) for k, v in _WORDS.items()}
        words.update(adj2=rng.choice(_WORDS["adj"]), noun2=rng.choice(_WORDS["noun"]), count=rng.choice(_COUNTS))
        text = rng.choice(_SHAPES).format(**words)
        if text not in seen:
            seen.add(text)
            lines.append(f"{len(lines) + 1}. {text[0].upper()}{text[1:]}")
    return "\n".join(lines)
