"""Slot vocabularies for the offline template grammar (`template_backend.py`).

Data only. Words are grouped so that any draw from one group makes sense with any draw from its
companions (a pasture for cows, a windowsill for mugs), which keeps the combinations sensible
while the space stays large. Plurals are formed by `template_backend.plural`; irregular ones are
listed here.
"""

from __future__ import annotations

# Word tables are packed by hand, many entries per line, so a reader can scan them.
# fmt: off

IRREGULAR_PLURALS = {
    "child": "children", "man": "men", "woman": "women", "person": "people", "fisherman": "fishermen",
    "goose": "geese", "mouse": "mice", "ox": "oxen", "sheep": "sheep", "deer": "deer", "moose": "moose",
    "bison": "bison", "fish": "fish", "wolf": "wolves", "knife": "knives", "loaf": "loaves", "leaf": "leaves",
    "scarf": "scarves", "cactus": "cacti", "tomato": "tomatoes", "potato": "potatoes", "mango": "mangoes",
    "buffalo": "buffaloes",
}

# ---------------------------------------------------------------------------------------------------------------
# counting: CountBench-style captions. Adjectives never double as nouns here, so a count word is followed by
# adjectives and then exactly one head noun.
LIGHT_EXTRAS = (
    "in soft morning light", "in warm evening light", "with a blurred background", "photographed from above",
    "captured from a low angle", "in a sharp close-up photo", "in natural daylight", "seen from the side",
    "in a wide shot", "with long soft shadows", "in a candid snapshot", "in bright daylight", "in dim light",
    "with a shallow depth of field", "in a high-resolution photo", "in a slightly tilted shot",
    "in a softly lit photo", "framed from a distance",
)

COUNT_CATEGORIES = {
    "pets": {
        "nouns": (
            "dog", "cat", "puppy", "kitten", "rabbit", "hamster", "parrot", "guinea pig", "ferret", "corgi", "beagle",
            "poodle", "dachshund", "tabby cat", "budgie", "chihuahua",
        ),
        "adjectives": (
            "fluffy", "small", "sleepy", "curious", "brown", "black", "white", "gray", "spotted", "young", "playful",
            "tiny", "shaggy", "cream-colored", "black and white", "long-haired",
        ),
        "actions": (
            "sleeping", "sitting", "resting", "playing", "curled up", "lying down", "napping", "peeking out",
            "stretching", "looking at the camera", "waiting patiently", "yawning",
        ),
        "places": (
            "on a plaid blanket", "on a green velvet sofa", "in a wicker basket", "on a sunny windowsill",
            "on a wooden porch", "in a cardboard box", "on a knitted rug", "beside a brick fireplace",
            "on an unmade bed", "in a grassy backyard", "under a kitchen table", "next to a food bowl",
            "on a leather armchair", "in a pet bed by the door", "on a tiled kitchen floor",
            "at the top of a staircase",
        ),
    },
    "farm": {
        "nouns": (
            "cow", "sheep", "goat", "horse", "pig", "chicken", "goose", "duck", "donkey", "ox", "rooster", "lamb",
            "llama", "turkey", "pony", "calf",
        ),
        "adjectives": (
            "brown", "white", "black", "spotted", "young", "sturdy", "muddy", "gray", "speckled", "old", "small",
            "large", "tan", "dappled",
        ),
        "actions": (
            "grazing", "standing", "resting", "walking slowly", "lying in the sun", "eating hay", "huddled",
            "wandering", "drinking water", "looking over the fence",
        ),
        "places": (
            "in a green pasture", "beside a red barn", "by a wooden fence", "in a muddy farmyard",
            "on a grassy hillside", "near a stack of hay bales", "in a fenced paddock", "along a dirt road",
            "next to a rusty water trough", "in an open field of clover", "outside a stone farmhouse",
            "under an old oak tree", "in a misty meadow", "near a wooden gate",
        ),
    },
    "wildlife": {
        "nouns": (
            "fox", "deer", "wolf", "bear", "owl", "moose", "raccoon", "squirrel", "hedgehog", "badger", "mouse",
            "hare", "bison", "elk", "lynx", "beaver",
        ),
        "adjectives": (
            "red", "brown", "gray", "young", "wild", "alert", "small", "large", "shaggy", "dark", "majestic", "timid",
            "snow-dusted", "lean",
        ),
        "actions": (
            "standing", "foraging", "resting", "sitting", "walking", "looking around", "drinking", "hiding",
            "sniffing the ground", "crossing a clearing", "watching quietly", "searching for food",
        ),
        "places": (
            "in a pine forest", "on a snowy clearing", "by a rocky riverbank", "on a mossy log", "in a misty meadow",
            "at the edge of a birch forest", "among autumn leaves", "near a frozen lake", "on a fallen tree trunk",
            "in tall golden grass", "beside a mountain stream", "under a canopy of ferns", "on a rocky ledge",
            "in a quiet valley",
        ),
    },
    "savanna": {
        "nouns": (
            "elephant", "giraffe", "zebra", "lion", "rhino", "antelope", "buffalo", "cheetah", "hippo", "warthog",
            "gazelle", "ostrich", "wildebeest", "meerkat",
        ),
        "adjectives": (
            "adult", "young", "dusty", "large", "tall", "striped", "lean", "sunlit", "old", "small", "muscular",
            "sleek",
        ),
        "actions": (
            "standing", "walking", "lying in the grass", "resting", "drinking", "looking into the distance",
            "lying in the shade",
            "crossing a dirt road", "running", "searching for food",
        ),
        "places": (
            "on the open savanna", "near a muddy watering hole", "under an acacia tree", "in dry yellow grass",
            "on a dusty plain", "beside a dirt track", "at the edge of a riverbank", "near a termite mound",
            "in a national park", "on a sun-baked clearing", "by a shallow river", "among thorny bushes",
        ),
    },
    "waterbirds": {
        "nouns": (
            "swan", "flamingo", "pelican", "heron", "seagull", "mallard", "goose", "cormorant", "stork", "egret",
            "puffin", "kingfisher",
        ),
        "adjectives": (
            "white", "pink", "gray", "black", "elegant", "young", "tall", "wet", "speckled", "graceful", "small",
            "large",
        ),
        "actions": (
            "standing", "swimming", "wading", "resting", "preening", "floating", "drying its wings", "fishing",
            "looking around", "taking off",
        ),
        "places": (
            "on a calm lake", "in a shallow lagoon", "on a sandy shoreline", "by a wooden pier",
            "in a reed-filled pond", "on a rocky breakwater", "at the edge of a marsh", "on a misty river",
            "near a fishing harbor", "on a mudflat at low tide", "beside a stone bridge", "on a floating log",
        ),
    },
    "fruit": {
        "nouns": (
            "apple", "orange", "banana", "pear", "lemon", "peach", "tomato", "avocado", "mango", "strawberry", "plum",
            "pomegranate", "kiwi", "coconut", "pineapple", "watermelon", "lime", "fig",
        ),
        "adjectives": (
            "ripe", "fresh", "juicy", "shiny", "halved", "whole", "small", "large", "glossy", "organic",
            "perfectly ripe", "freshly washed", "sliced", "dew-covered",
        ),
        "places": (
            "on a white plate", "in a ceramic bowl", "on a wooden cutting board", "on a kitchen counter",
            "in a wicker basket", "on a checkered picnic blanket", "on a marble countertop",
            "on a rustic wooden table", "in a glass bowl", "on a market stall", "on a blue linen napkin",
            "on a slate serving board", "next to a kitchen knife", "on a sunny windowsill",
        ),
    },
    "baked": {
        "nouns": (
            "cupcake", "donut", "croissant", "muffin", "cookie", "bagel", "pretzel", "macaron", "cinnamon roll",
            "brownie", "waffle", "pancake", "scone", "eclair", "loaf",
        ),
        "adjectives": (
            "freshly baked", "golden", "chocolate", "glazed", "warm", "homemade", "frosted", "sugar-dusted", "crispy",
            "small", "large", "buttery", "blueberry", "vanilla",
        ),
        "places": (
            "on a white plate", "on a wire cooling rack", "in a bakery display case", "on a wooden tray",
            "on a parchment-lined baking sheet", "in a paper bag", "on a cake stand", "on a cafe table",
            "next to a cup of coffee", "on a floral tablecloth", "in a cardboard pastry box", "on a marble countertop",
        ),
    },
    "household": {
        "nouns": (
            "mug", "candle", "book", "vase", "lamp", "clock", "teapot", "jar", "bottle", "spoon", "knife", "key",
            "pencil", "notebook", "wine glass", "pillow", "houseplant", "picture frame", "teacup", "bowl",
        ),
        "adjectives": (
            "blue", "white", "red", "green", "yellow", "old", "tall", "small", "ceramic", "brass", "wooden", "vintage",
            "handmade", "polished", "striped", "empty", "dusty", "hand-painted",
        ),
        "places": (
            "on a wooden table", "on a bookshelf", "on a windowsill", "on a cluttered desk", "on a marble countertop",
            "on a bedside table", "on a kitchen shelf", "on a white tablecloth", "on a glass coffee table",
            "on top of a piano", "on a fireplace mantel", "on a rustic sideboard", "in a sunlit room",
            "on a metal tray",
        ),
    },
    "vehicles": {
        "nouns": (
            "car", "bus", "bicycle", "motorcycle", "truck", "taxi", "scooter", "van", "tractor", "jeep",
            "pickup truck", "camper van", "tram", "convertible",
        ),
        "adjectives": (
            "red", "yellow", "blue", "white", "black", "green", "vintage", "old", "rusty", "shiny", "muddy",
            "brand-new", "dusty", "silver",
        ),
        "actions": (
            "parked", "driving", "waiting", "stopped", "lined up", "moving slowly", "standing", "covered in snow",
        ),
        "places": (
            "on a city street", "at a busy intersection", "in front of a brick building", "on a country road",
            "in an empty parking lot", "outside a train station", "on a rainy street", "near a gas station",
            "beside a row of trees", "on a coastal highway", "in a narrow alley", "next to a red mailbox",
            "on a cobblestone square", "under a highway bridge",
        ),
    },
    "boats": {
        "nouns": (
            "boat", "sailboat", "canoe", "kayak", "rowboat", "ferry", "fishing boat", "yacht", "gondola", "tugboat",
            "paddle boat", "houseboat",
        ),
        "adjectives": (
            "red", "white", "blue", "yellow", "small", "old", "wooden", "weathered", "colorful", "green",
            "red-and-white", "bright",
        ),
        "actions": ("floating", "docked", "moored", "drifting", "anchored", "sailing", "tied up", "resting"),
        "places": (
            "on a calm lake", "in a busy harbor", "along a winding river", "at a wooden pier", "on a turquoise bay",
            "near a rocky coast", "in a quiet marina", "on a misty fjord", "by a sandy beach", "in a narrow canal",
            "beside a lighthouse", "on choppy gray water",
        ),
    },
    "people": {
        "nouns": (
            "man", "woman", "child", "person", "boy", "girl", "firefighter", "chef", "student", "surfer", "hiker",
            "musician", "fisherman", "nurse", "police officer", "gardener", "dancer", "runner",
        ),
        "adjectives": (
            "young", "elderly", "smiling", "tall", "tired", "cheerful", "serious", "happy", "busy", "middle-aged",
            "laughing", "focused",
        ),
        "actions": (
            "walking", "standing", "talking", "laughing", "waiting", "sitting together", "posing", "looking at a map",
            "taking a break", "drinking coffee", "chatting", "smiling at the camera",
        ),
        "places": (
            "on a park bench", "in a city square", "on a sandy beach", "at a bus stop", "in a busy kitchen",
            "on a mountain trail", "in a train station", "outside a cafe", "on a wooden dock", "in a public library",
            "on a quiet sidewalk", "in a sunny garden", "in front of a fountain", "at a farmers market",
        ),
    },
    "flowers": {
        "nouns": (
            "sunflower", "rose", "tulip", "daisy", "cactus", "fern", "orchid", "succulent", "lily", "peony",
            "lavender sprig", "bonsai tree", "poppy", "hydrangea", "daffodil", "carnation",
        ),
        "adjectives": (
            "red", "yellow", "white", "pink", "purple", "tall", "small", "blooming", "wilted", "fresh", "potted",
            "delicate", "bright", "dried",
        ),
        "places": (
            "in a clay pot", "in a glass vase", "in a garden bed", "on a windowsill", "in a tin bucket",
            "on a wooden table", "in a flower shop window", "on a balcony", "in a ceramic planter",
            "beside a stone wall", "in a greenhouse", "on a kitchen counter", "in a field", "by a garden path",
        ),
    },
    "toys": {
        "nouns": (
            "teddy bear", "rubber duck", "toy car", "soccer ball", "tennis ball", "balloon", "kite", "toy robot",
            "wooden block", "doll", "toy dinosaur", "marble", "spinning top", "toy train",
        ),
        "adjectives": (
            "red", "blue", "yellow", "green", "plush", "old", "small", "large", "colorful", "shiny", "worn", "striped",
            "bright", "brand-new",
        ),
        "places": (
            "on a playroom floor", "in a toy box", "on a child's bed", "on a grassy lawn", "on a wooden shelf",
            "on a sandy beach", "under a Christmas tree", "on a checkered rug", "in a sandbox", "on a windowsill",
            "on a bedroom carpet", "on a park bench", "in a shopping cart",
        ),
    },
}

COUNT_OPENERS = ("A photo of", "A picture of", "A close-up of", "A snapshot of", "An image of", "A photograph of")

# ---------------------------------------------------------------------------------------------------------------
# spatial and attribute binding: things with the materials they can sensibly be made of.
COLOURS = (
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "white", "black", "gray", "brown", "teal",
    "turquoise", "navy blue", "crimson", "lavender", "mint green", "beige", "maroon", "mustard yellow",
)
ANIMAL_COLOURS = (
    "black", "white", "brown", "gray", "spotted", "ginger", "golden", "cream-colored", "dark brown", "black and white",
)
SHAPES = ("round", "square", "oval", "rectangular", "hexagonal", "triangular", "heart-shaped", "star-shaped")

THINGS = {
    "mug": ("ceramic", "enamel", "glass", "metal"), "teapot": ("ceramic", "porcelain", "cast-iron", "glass"),
    "vase": ("glass", "ceramic", "porcelain", "clay"), "bowl": ("ceramic", "wooden", "glass", "metal"), "candle": (),
    "alarm clock": ("metal", "plastic", "wooden"), "desk lamp": ("metal", "brass", "plastic"), "laptop": (),
    "jar": ("glass", "ceramic", "clay"), "bottle": ("glass", "plastic"), "book": (), "globe": (), "camera": (),
    "plate": ("ceramic", "porcelain", "wooden"), "teacup": ("porcelain", "ceramic"),
    "box": ("wooden", "cardboard", "metal"), "tray": ("wooden", "metal", "silver"),
    "cutting board": ("wooden", "bamboo", "marble"), "backpack": ("leather", "canvas", "nylon"),
    "suitcase": ("leather", "plastic"), "chair": ("wooden", "metal", "plastic", "wicker"),
    "armchair": ("velvet", "leather", "wicker"), "sofa": ("velvet", "leather", "linen"), "stool": ("wooden", "metal"),
    "table": ("wooden", "metal", "glass", "marble"), "side table": ("wooden", "glass", "marble"),
    "bench": ("wooden", "metal", "stone"), "ottoman": ("velvet", "leather"), "bicycle": (), "car": (), "bus": (),
    "motorcycle": (), "scooter": (), "umbrella": (), "hat": ("straw", "wool", "felt"), "scarf": ("wool", "silk"),
    "pillow": ("velvet", "cotton", "linen", "silk"), "cushion": ("velvet", "cotton", "linen"), "rug": ("wool", "jute"),
    "blanket": ("wool", "cotton", "fleece"), "bucket": ("metal", "plastic"), "watering can": ("metal", "plastic"),
    "basket": ("wicker",), "picnic basket": ("wicker",), "guitar": (), "kettle": ("metal", "enamel", "copper"),
    "frying pan": ("cast-iron", "copper"), "toaster": ("metal",), "clock": ("wooden", "metal"),
    "wall clock": ("wooden", "metal"), "mirror": (), "round mirror": (), "picture frame": ("wooden", "metal"),
    "lantern": ("metal", "paper", "brass"), "birdhouse": ("wooden",), "flower pot": ("clay", "ceramic", "plastic"),
    "fire hydrant": (), "mailbox": ("metal",), "trash can": ("metal", "plastic"), "traffic cone": (), "skateboard": (),
    "surfboard": (), "beach ball": (), "cooler": ("plastic",), "deck chair": ("wooden", "canvas"),
    "towel": ("cotton",), "straw hat": (), "kite": (), "balloon": (), "teddy bear": (),
    "toy robot": ("plastic", "metal", "wooden"), "rubber duck": (), "wheelbarrow": ("metal", "wooden"),
    "lawn chair": ("plastic", "metal", "wooden"), "picnic table": ("wooden",), "floor lamp": ("metal", "brass"),
    "bookshelf": ("wooden", "metal"), "television": (), "piano": (), "coat rack": ("wooden", "metal"),
    "handbag": ("leather", "canvas"), "water bottle": ("metal", "plastic", "glass"), "helmet": (),
    "glove": ("leather", "wool"), "phone case": ("leather", "plastic"), "pencil case": ("leather", "canvas"),
    "notebook": ("leather",), "drawer": ("wooden",),
}
ANIMAL_THINGS = (
    "cat", "dog", "rabbit", "kitten", "puppy", "pigeon", "crow", "seagull", "crab", "squirrel", "bird", "horse",
    "duck", "parrot", "hamster", "goat",
)
# Nouns whose look is fixed by a few adjectives of their own, not by colours or materials.
FIXED_ADJECTIVES = {
    "tree": ("tall", "leafy", "young", "old", "bare"), "palm tree": ("tall", "leaning", "short"),
    "sandcastle": ("tall", "small", "crumbling"), "potted plant": ("leafy", "tall", "small"),
    "potted cactus": ("small", "tall", "spiky"), "stack of books": ("tall", "messy", "neat"),
    "stack of magazines": ("tall", "messy"), "lifeguard tower": ("wooden", "white", "red"),
    "street lamp": ("old", "iron", "tall"), "seashell": ("pink", "white", "spiral"),
    "starfish": ("orange", "red", "purple"), "rock": ("large", "mossy", "flat"), "driftwood log": ("bleached", "long"),
    "tree stump": ("mossy", "old"), "stone wall": ("low", "old", "mossy"),
    "garden gnome": ("smiling", "painted", "small"), "birdbath": ("stone", "concrete"),
    "apple": ("red", "green", "shiny"), "banana": ("ripe", "yellow", "green"), "loaf of bread": ("crusty", "sliced"),
    "fruit bowl": ("full", "ceramic"), "food truck": ("red", "blue", "silver"), "phone booth": ("red", "old"),
    "delivery van": ("white", "blue"), "bus shelter": ("glass", "empty"), "parked truck": ("red", "white"),
    "fishing boat": ("small", "blue", "wooden"), "swing": ("wooden", "rope"),
    "television": ("old", "flat-screen", "vintage"), "camera": ("vintage", "black", "silver"),
    "globe": ("antique", "small", "blue"), "fire hydrant": ("red", "yellow", "rusty"),
    "traffic cone": ("orange", "striped", "tipped-over"), "piano": ("black", "white", "old", "upright"),
    "guitar": ("acoustic", "red", "black", "electric"), "laptop": ("silver", "black", "open", "closed"),
    "round mirror": ("gold-framed", "large", "small"), "mirror": ("gold-framed", "tall", "oval"),
    "kitten": ("gray", "white", "ginger", "tabby"), "crow": ("black", "glossy", "large"),
    "pigeon": ("gray", "white", "speckled"), "seagull": ("white", "gray", "young"),
    "bird": ("small", "blue", "red", "yellow"), "duck": ("white", "brown", "yellow"),
    "parrot": ("green", "red", "blue"), "crab": ("red", "orange", "small"), "squirrel": ("gray", "red", "brown"),
}

SPATIAL_LATERAL = (
    "to the left of", "to the right of", "next to", "beside", "behind", "in front of", "on the left side of",
    "on the right side of", "directly behind", "just in front of",
)
SPATIAL_ON = ("on top of", "on", "resting on top of", "sitting on")
SPATIAL_UNDER = ("under", "beneath", "underneath")
SPATIAL_ABOVE = ("above", "hanging above", "mounted above")

SPATIAL_SCENES = {
    "tabletop": {
        "where": (
            "on a wooden desk", "on a kitchen table", "on a tall shelf", "on a marble countertop",
            "on a cluttered workbench", "on a bedside table", "on a glass coffee table", "on a wide windowsill",
            "on a picnic blanket", "on a rustic dining table",
        ),
        "objects": (
            "mug", "teapot", "vase", "bowl", "candle", "alarm clock", "desk lamp", "laptop", "jar", "bottle",
            "potted cactus", "book", "globe", "camera", "teacup", "toy robot", "rubber duck", "teddy bear", "apple",
            "banana", "water bottle", "notebook", "pencil case", "lantern",
        ),
        "smalls": (
            "mug", "candle", "apple", "teacup", "rubber duck", "camera", "jar", "alarm clock", "banana",
            "potted cactus", "notebook", "globe",
        ),
        "supports": ("stack of books", "box", "laptop", "plate", "tray", "cutting board", "book"),
        "covers": (),
    },
    "room": {
        "where": (
            "in a bright living room", "in a cozy bedroom", "in a sunlit studio apartment", "in a quiet study",
            "in a minimalist loft", "in a hotel lobby", "in a wood-paneled den", "in a tidy guest room",
        ),
        "objects": (
            "armchair", "floor lamp", "potted plant", "bookshelf", "cat", "dog", "guitar", "suitcase", "chair",
            "side table", "television", "sofa", "piano", "basket", "coat rack", "ottoman", "stool", "rug",
        ),
        "smalls": (
            "cat", "kitten", "teddy bear", "cushion", "basket", "stack of magazines", "guitar", "laptop", "backpack",
            "hat", "puppy", "handbag",
        ),
        "supports": ("chair", "sofa", "armchair", "side table", "ottoman", "bench", "stool", "piano"),
        "covers": ("table", "chair", "piano", "side table", "bench"),
        "hangers": ("picture frame", "round mirror", "wall clock", "lantern"),
        "hang_over": ("sofa", "armchair", "piano", "bookshelf", "side table"),
    },
    "street": {
        "where": (
            "on a quiet street", "in a city plaza", "outside a train station", "on a rainy avenue",
            "in front of a brick apartment building", "on a cobblestone street", "near a busy intersection",
            "on a sunny boulevard",
        ),
        "objects": (
            "car", "bicycle", "bench", "fire hydrant", "mailbox", "street lamp", "tree", "bus", "dog", "trash can",
            "motorcycle", "food truck", "scooter", "phone booth", "traffic cone", "delivery van",
        ),
        "smalls": ("cat", "dog", "pigeon", "backpack", "traffic cone", "skateboard", "box", "crow", "helmet"),
        "supports": ("bench", "car", "mailbox", "trash can", "stone wall", "scooter"),
        "covers": ("bench", "tree", "bus shelter", "street lamp", "parked truck"),
    },
    "garden": {
        "where": (
            "in a backyard garden", "on a grassy lawn", "on a stone patio", "in a city park", "in a vegetable garden",
            "beside a garden shed", "in an orchard",
        ),
        "objects": (
            "wheelbarrow", "watering can", "birdhouse", "garden gnome", "bench", "flower pot", "rabbit", "lawn chair",
            "picnic basket", "tree", "swing", "bicycle", "dog", "birdbath", "lantern", "bucket",
        ),
        "smalls": (
            "rabbit", "cat", "watering can", "flower pot", "picnic basket", "garden gnome", "bird", "lantern",
            "squirrel", "bucket", "straw hat",
        ),
        "supports": ("bench", "lawn chair", "stone wall", "tree stump", "picnic table", "wheelbarrow"),
        "covers": ("tree", "bench", "picnic table", "umbrella", "lawn chair"),
    },
    "beach": {
        "where": (
            "on a sandy beach", "by the shore", "on a pebble beach", "near the water's edge",
            "on a quiet tropical beach", "on a windy beach",
        ),
        "objects": (
            "umbrella", "surfboard", "sandcastle", "lifeguard tower", "beach ball", "cooler", "deck chair", "seagull",
            "crab", "bucket", "towel", "palm tree", "fishing boat", "driftwood log",
        ),
        "smalls": ("crab", "seagull", "beach ball", "bucket", "towel", "straw hat", "seashell", "starfish"),
        "supports": ("deck chair", "cooler", "rock", "driftwood log", "towel"),
        "covers": ("umbrella", "palm tree", "deck chair", "lifeguard tower"),
    },
    "kitchen": {
        "where": (
            "in a small kitchen", "on a kitchen counter", "in a farmhouse kitchen", "in a modern kitchen",
            "on a butcher-block counter",
        ),
        "objects": (
            "toaster", "kettle", "cutting board", "fruit bowl", "jar", "bottle", "loaf of bread", "teapot",
            "frying pan", "bowl", "mug", "plate", "water bottle", "candle", "basket",
        ),
        "smalls": ("mug", "apple", "jar", "teacup", "banana", "loaf of bread", "candle"),
        "supports": ("cutting board", "tray", "plate", "toaster", "box"),
        "covers": (),
    },
}

# attribute binding: people and animals with their own coloured things.
SHAPED = (
    "table", "side table", "rug", "clock", "wall clock", "plate", "box", "pillow", "cushion", "vase", "tray",
    "lantern", "bowl", "jar", "mirror", "stool", "ottoman", "picture frame", "cutting board", "flower pot",
    "alarm clock", "mug", "candle", "basket",
)
ATTR_PEOPLE = (
    "a woman", "a man", "a girl", "a boy", "an old man", "an old woman", "a young woman", "a young man", "a tall man",
    "a little girl", "a teenager", "a hiker", "a chef", "a street musician",
)
GARMENTS = {
    "hat": ("straw", "wool", "felt"), "scarf": ("wool", "silk", "knitted"), "jacket": ("leather", "denim", "quilted"),
    "coat": ("wool", "tweed"), "raincoat": (), "sweater": ("wool", "knitted", "cashmere"),
    "shirt": ("cotton", "linen", "flannel"), "dress": ("silk", "cotton", "linen"),
    "skirt": ("denim", "pleated", "silk"), "cap": ("wool", "cotton"), "hoodie": (), "vest": ("denim", "knitted"),
    "boots": ("leather", "rubber", "suede"), "sneakers": ("canvas", "leather"), "gloves": ("leather", "wool"),
    "trousers": ("linen", "corduroy", "wool"),
}
FEMININE_GARMENTS = ("dress", "skirt")  # only for women and girls
PLURAL_GARMENTS = ("boots", "sneakers", "gloves", "trousers")
HELD_THINGS = (
    "umbrella", "balloon", "book", "mug", "handbag", "suitcase", "kite", "lantern", "basket", "water bottle",
    "teddy bear", "backpack", "watering can", "bucket", "guitar",
)
ANIMAL_ACCESSORIES = {
    "dog": ("collar", "bandana", "knitted sweater", "harness", "bow tie"),
    "cat": ("collar", "bow tie", "ribbon", "knitted sweater"), "horse": ("saddle", "blanket", "bridle"),
    "rabbit": ("ribbon", "bow tie"), "puppy": ("collar", "bandana", "raincoat"), "goat": ("collar", "bell collar"),
    "pony": ("saddle", "blanket", "ribbon"),
}
ATTR_PLACES = (
    "in a sunny courtyard", "on a wooden porch", "in a bright studio", "in a furniture showroom",
    "on a cobblestone street", "in a city park", "in a small cafe", "on a rooftop terrace", "in a quiet library",
    "on a rainy sidewalk", "in a museum hall", "at a flea market", "in an empty room", "against a plain wall",
    "on a sandy beach", "in a greenhouse",
)

# ---------------------------------------------------------------------------------------------------------------
# text rendering: surfaces, how a text sits on each, and short texts that fit them. "{q}" is the quoted text.
TEXT_SURFACES = (
    ("a {w} wooden sign", "sign", "shop", (
        "outside a country bakery", "at the entrance of a farm", "nailed to a pine tree", "beside a hiking trail",
        "in front of a roadside fruit stand", "hanging from a rusty chain", "above a shop door")),
    ("a {w} wooden sign", "sign", "notice", (
        "at the edge of a forest", "stuck in the sand on a beach", "on a garden gate", "beside a muddy path",
        "in front of an old barn", "on a fence post", "at the end of a pier")),
    ("a {w} neon sign", "neon", "shop", (
        "in the window of a late-night diner", "above a bar counter", "on a rainy street at night",
        "in a dark arcade", "on a brick wall in an alley", "above a ramen shop")),
    ("a {w} chalkboard", "chalk", "notice", (
        "in a cozy coffee shop", "outside a corner cafe", "in a school classroom", "leaning against a flower stall",
        "next to a bakery door", "on a restaurant wall")),
    ("a {f} birthday cake", "cake", "party", (
        "on a kitchen table surrounded by balloons", "at a children's party", "on a glass cake stand",
        "in a bakery window", "next to a stack of presents", "lit with tiny candles")),
    ("a {c} t-shirt", "fabric", "slogan", (
        "worn by a smiling teenager", "folded on a store shelf", "hanging on a clothesline",
        "laid flat on a wooden floor", "on a mannequin in a shop window", "worn by a man at a concert")),
    ("a {c} hoodie", "fabric", "slogan", (
        "worn by a skateboarder", "hanging on a hook", "draped over a chair", "worn by a student on campus")),
    ("a {c} coffee mug", "print", "slogan", (
        "on an office desk", "next to a laptop", "on a cafe counter", "held by a woman in a sweater",
        "on a sunny windowsill", "beside a plate of cookies")),
    ("a {c} striped awning", "sign", "shop", (
        "above a corner shop", "on a quiet main street", "over a flower market", "shading a sidewalk cafe")),
    ("a {w} billboard", "sign", "shop", (
        "beside a desert highway", "above a busy intersection", "on top of an apartment building",
        "along a coastal road", "over a crowded train station")),
    ("a green street sign", "sign", "street", (
        "at a quiet intersection", "on a lamppost in the rain", "above a snowy sidewalk", "under a cherry tree",
        "on a corner of a busy avenue")),
    ("a {c} hardcover book", "book", "title", (
        "lying on a wooden desk", "on a library shelf", "on a bedside table", "in the hands of a reader",
        "next to a cup of tea", "propped up in a bookstore window")),
    ("a {w} movie poster", "poster", "title", (
        "on the wall of a cinema lobby", "in a dusty antique shop", "above a record player",
        "taped to a bedroom door")),
    ("a {c} doormat", "print", "welcome", (
        "in front of a blue door", "on a wooden porch", "outside an apartment", "at the entrance of a cottage")),
    ("a {c} sticky note", "handwritten", "note", (
        "stuck to a computer monitor", "on a refrigerator door", "on a bathroom mirror", "on a laptop lid")),
    ("a {c} graffiti mural", "paint", "mural", (
        "on a brick wall", "under a railway bridge", "on the side of a warehouse", "along a concrete skate park",
        "on a garage door")),
    ("a {w} cardboard box", "label", "box", (
        "in the back of a moving truck", "in an empty apartment", "on a warehouse shelf", "by the front door")),
    ("a glass jar", "label", "pantry", (
        "on a pantry shelf", "on a kitchen counter", "at a farmers market", "next to a wooden spoon")),
    ("a {c} baseball cap", "embroidery", "slogan", (
        "worn by a fisherman", "on a car dashboard", "hanging on a bedpost", "worn by a girl at a ballgame")),
    ("a {c} canvas tote bag", "print", "slogan", (
        "hanging on a chair", "carried by a woman at a market", "in a bicycle basket", "resting on a bench")),
    ("a {c} greeting card", "handwritten", "party", (
        "standing on a mantelpiece", "next to a bouquet of tulips", "on a breakfast tray", "in an open envelope")),
    ("a storefront window", "window", "shop", (
        "on a snowy evening", "in a busy shopping street", "in an old town square", "on a sunny morning")),
    ("a pizza box", "print", "shop", (
        "on a coffee table", "on the seat of a car", "held by a delivery driver", "on a kitchen counter")),
    ("a {c} hot air balloon", "paint", "mural", (
        "floating over green hills", "rising above a misty valley", "drifting over a lake at sunrise")),
    ("a {c} beach towel", "print", "slogan", (
        "spread on the sand", "hanging over a balcony railing", "next to a pair of flip-flops")),
    ("a {w} wooden trail marker", "carved", "trail", (
        "at a fork in a forest path", "on a mountain ridge", "beside a waterfall", "in a snowy pine forest")),
    ("a {f} cookie", "cake", "party", (
        "on a plate of holiday treats", "in a bakery box", "on a baking tray", "next to a glass of milk")),
    ("a {c} lunch box", "label", "note", (
        "on a school desk", "in a kitchen", "on a park bench", "in a child's backpack")),
)
TEXT_SURFACE_COLOURS = ("red", "blue", "green", "yellow", "white", "black", "pink", "purple", "orange", "gray",
                        "navy blue", "mint green", "teal", "maroon", "beige", "lavender")
TEXT_SURFACE_WEAR = ("weathered", "old", "small", "large", "rustic", "new", "crooked", "faded", "battered",
                     "worn", "huge", "tiny")
TEXT_FLAVOURS = ("chocolate", "strawberry", "vanilla", "lemon", "two-tier", "round", "square", "heart-shaped",
                 "homemade", "frosted", "carrot", "coconut")
TEXT_MODES = {
    "sign": ("that says {q}", "that reads {q}", "with the words {q}", "displaying the text {q}", "reading {q}"),
    "neon": ("spelling out {q}", "that says {q}", "glowing with the words {q}", "reading {q}"),
    "chalk": ("with {q} written in white chalk", "that says {q} in curly chalk letters", "reading {q}"),
    "cake": (
        "with {q} written in icing", "decorated with the words {q} in pink frosting",
        "that says {q} in chocolate letters", "with {q} piped on top",
    ),
    "fabric": ("printed with {q}", "with the slogan {q} across the chest", "that says {q} in bold letters"),
    "embroidery": ("embroidered with {q}", "with {q} stitched on the front"),
    "label": ("labeled {q}", "with a label that reads {q}", "marked {q} in black marker"),
    "book": ("titled {q}", "with the title {q} on its cover", "whose cover reads {q}"),
    "poster": ("for a film called {q}", "with the title {q} in large letters", "advertising {q}"),
    "handwritten": ("with {q} written on it", "that says {q} in neat handwriting", "with the scribbled words {q}"),
    "paint": ("spelling {q} in bright letters", "that says {q}", "with the words {q} in large painted letters"),
    "print": ("printed with {q}", "that says {q}", "with the words {q}"),
    "carved": ("carved with the words {q}", "that reads {q}"),
    "window": ("with {q} painted in gold letters", "with the words {q} on the glass", "that reads {q}"),
}
TEXT_STYLES = {
    "sign": (
        "in bold red letters", "in elegant gold script", "in hand-drawn letters", "in large white capitals",
        "in a playful rounded font", "in faded vintage lettering", "in bright blue letters",
    ),
    "neon": ("in glowing pink letters", "in bright blue neon", "in warm orange neon", "in flickering green letters"),
    "fabric": ("in a retro font", "in bright yellow letters", "in black block letters", "in rainbow colors"),
    "print": ("in a bold font", "in cheerful hand-lettering", "in small black letters", "in red capital letters"),
    "paint": ("in bubbly letters", "in bright spray paint", "in tall pastel letters"),
}
FIRST_NAMES = (
    "Mia", "Leo", "Rosa", "Sam", "Nina", "Omar", "Lucy", "Ava", "Theo", "Maya", "Ben", "Iris", "Jonah", "Priya",
    "Hugo", "Zoe", "Kofi", "Elena", "Felix", "Nora", "Ruby", "Max", "Aiko", "Luca",
)
SHOP_KINDS = (
    "Bakery", "Garage", "Books", "Pizza", "Coffee", "Flowers", "Diner", "Barber Shop", "Bike Repair", "Ice Cream",
    "Tacos", "Noodle Bar", "Laundry", "Hardware", "Fish Market", "Tea House", "Records", "Bagels", "Candy Shop",
    "Pet Shop",
)
SHOP_WORDS = (
    "Blue Moon", "Golden Spoon", "Rusty Anchor", "Happy Cactus", "Silver Fern", "Red Fox", "Lucky Star", "Sunny Side",
    "Green Door", "Old Mill", "Little Owl", "Velvet Crow", "Corner", "Salty Dog", "Copper Kettle", "Wild Plum",
    "Brass Lantern", "Paper Moon", "Night Owl", "Honey Bee",
)
TEXT_FIXED = {
    "notice": (
        "Keep Out", "Open 24 Hours", "No Parking", "Beware of Dog", "Fresh Eggs", "Free Coffee", "Slow Down",
        "Closed for Lunch", "Back in 5 Minutes", "Wet Paint", "Private Beach", "Sale Today", "Live Music Tonight",
        "Please Knock", "Today's Special Soup", "Fresh Strawberries", "Honey for Sale", "Quiet Please", "Push",
        "Welcome Friends", "Lost Cat", "Dogs Welcome", "Cash Only", "Firewood for Sale",
    ),
    "party": (
        "Happy Birthday {name}", "Congratulations {name}", "Happy Anniversary", "Welcome Home {name}", "Best Mom Ever",
        "Good Luck {name}", "Happy Retirement", "Thank You", "Just Married", "Happy 30th", "Get Well Soon",
        "Merry Christmas", "Happy New Year", "Well Done {name}", "Bon Voyage {name}",
    ),
    "slogan": (
        "Coffee First", "Good Vibes Only", "I Love Tacos", "Stay Curious", "Born to Run", "Plant Lover",
        "Not a Morning Person", "Team {name}", "Hello Sunshine", "Keep It Simple", "Cat Person", "Ocean Child",
        "Powered by Tea", "Dream Big", "Local Legend", "Bike More", "Pizza Club", "Weekend Mode", "Be Kind",
        "Think Outside",
    ),
    "title": (
        "The {adj} {noun}", "Secrets of the {noun}", "The Last {noun}", "A {noun} in Winter", "Return of the {noun}",
        "The {noun} at Midnight", "Beyond the {noun}", "The {adj} Summer",
    ),
    "note": (
        "Buy Milk", "Call Mom", "Feed the Cat", "Don't Forget", "Water the Plants", "Meeting at Noon",
        "Lunch for {name}", "Pay Rent", "Back Soon", "Love You {name}", "Walk the Dog", "Take Out Trash",
    ),
    "mural": (
        "Dream Big", "Stay Wild", "Hello City", "Keep Smiling", "Make Art", "Good Morning", "Be Brave",
        "Summer Forever", "Welcome to {town}", "{town} Rocks",
    ),
    "box": (
        "Fragile", "Kitchen Stuff", "Winter Clothes", "Books", "Toys", "This Side Up", "Old Photos",
        "Holiday Decorations", "Records", "{name}'s Room", "Garage", "Donations",
    ),
    "pantry": (
        "Sugar", "Flour", "Cookies", "Homemade Jam", "Spices", "Coffee Beans", "Honey", "Pickles", "Rice", "Oats",
        "Salt", "Tea", "Peanut Butter", "Lemonade", "Buttons", "Pasta",
    ),
    "street": (
        "Maple Avenue", "Main Street", "Elm Street", "Harbor Road", "Sunset Boulevard", "Mill Lane", "Cherry Lane",
        "Oak Street", "Bridge Road", "Church Street", "Station Road", "{name} Way",
    ),
    "trail": (
        "Summit Trail", "Lake View", "Waterfall Loop", "Bear Creek", "Eagle Ridge", "Pine Hollow", "Campground",
        "Lookout Point", "{town} 3 Miles", "Fox Den Trail",
    ),
    "welcome": (
        "Welcome", "Go Away", "Hello", "Wipe Your Paws", "Home Sweet Home", "Come In", "The {name}s",
        "Welcome to {town}", "Hi There",
    ),
}
TITLE_ADJECTIVES = (
    "Silent", "Hidden", "Lost", "Golden", "Crimson", "Forgotten", "Endless", "Secret", "Broken", "Winter", "Midnight",
    "Paper", "Glass", "Quiet", "Wild",
)
TITLE_NOUNS = (
    "Garden", "River", "Lighthouse", "Orchard", "Mountain", "Island", "Library", "Ocean", "Forest", "Kingdom", "Moon",
    "Harbor", "Clockmaker", "Fox", "Tide", "Compass",
)
TOWNS = (
    "Pine Hollow", "Maple Creek", "Fairhaven", "Oakridge", "Willow Bay", "Riverton", "Stonebridge", "Cedar Falls",
    "Brightwater", "Elmwood",
)
TEXT_SHOTS = (
    "A photo of", "A close-up photo of", "A picture of", "A street photo of", "A sharp photo of",
    "A realistic photo of",
)

# ---------------------------------------------------------------------------------------------------------------
# everyday: COCO-style captions. Each activity carries the places where it makes sense.
EVERYDAY_PEOPLE = (
    "a man", "a woman", "a young man", "a young woman", "an older man", "an older woman", "a little girl",
    "a little boy", "a teenage girl", "a teenage boy", "a person", "two men", "two women", "a group of friends",
    "a couple", "a family", "a group of kids", "a man and a woman", "a bearded man", "a woman with long hair",
    "a girl with a ponytail", "an elderly couple",
)
EVERYDAY_CLOTHES = (
    "jacket", "shirt", "hoodie", "sweater", "coat", "cap", "hat", "scarf", "raincoat", "vest", "t-shirt",
)
# (activities, places where they happen, 'indoor' or 'outdoor' for the weather/time phrases that fit)
EVERYDAY_ACTIVITIES = (
    (
        (
            "riding a bicycle", "walking a dog", "waiting for a bus", "carrying shopping bags",
            "talking on a cell phone", "holding an umbrella", "eating an ice cream cone", "pushing a stroller",
            "reading a newspaper", "looking at a map", "taking a photo", "drinking a cup of coffee",
            "crossing the street", "hailing a taxi",
        ),
        (
            "down a busy city street", "on a crowded sidewalk", "in a city square", "near a bus stop",
            "in front of a coffee shop", "under a stone bridge", "at a crosswalk", "next to a food truck",
            "in an outdoor market", "along a canal", "outside a subway station", "past a row of shops",
        ),
        "outdoor",
    ),
    (
        (
            "riding a skateboard", "doing a trick on a skateboard",
        ),
        (
            "at a skate park", "down a concrete ramp", "along a boardwalk", "in an empty parking lot",
        ),
        "outdoor",
    ),
    (
        (
            "riding a surfboard", "paddling out on a surfboard", "carrying a surfboard",
        ),
        (
            "on a large wave", "in the ocean", "near a rocky point", "along a crowded beach",
        ),
        "outdoor",
    ),
    (
        (
            "playing tennis", "swinging a tennis racket", "serving a tennis ball",
        ),
        (
            "on a clay court", "on a grass court", "at a public park", "in a stadium",
        ),
        "outdoor",
    ),
    (
        (
            "swinging a baseball bat", "throwing a baseball", "catching a fly ball",
        ),
        (
            "at home plate", "during a little league game", "on a dirt field", "in front of a crowd",
        ),
        "outdoor",
    ),
    (
        (
            "throwing a frisbee", "catching a frisbee", "playing catch",
        ),
        (
            "in a grassy park", "on a sandy beach", "in a college quad", "in a backyard",
        ),
        "outdoor",
    ),
    (
        (
            "flying a kite", "running with a kite",
        ),
        (
            "on a windy beach", "in an open field", "on a grassy hill", "near the ocean",
        ),
        "outdoor",
    ),
    (
        (
            "skiing down a slope", "snowboarding", "standing on skis",
        ),
        (
            "on a snowy mountain", "at a ski resort", "through fresh powder", "next to a chairlift",
        ),
        "outdoor",
    ),
    (
        (
            "cooking dinner", "slicing vegetables", "washing dishes", "baking cookies", "making sandwiches",
            "stirring a pot of soup", "rolling out dough",
        ),
        (
            "in a small kitchen", "at a kitchen counter", "in a bright modern kitchen", "in a restaurant kitchen",
            "next to a stove", "in a cluttered apartment kitchen",
        ),
        "indoor",
    ),
    (
        (
            "reading a book", "working on a laptop", "playing video games", "watching television", "eating popcorn",
            "napping", "talking on the phone", "knitting a scarf",
        ),
        (
            "on a couch in a living room", "at a desk by a window", "in a cozy armchair", "on a bed",
            "in a hotel room", "on a porch swing",
        ),
        "indoor",
    ),
    (
        (
            "eating pizza", "having lunch", "drinking wine", "sharing a dessert", "eating a sandwich",
            "cutting a birthday cake",
        ),
        (
            "at a restaurant table", "at an outdoor cafe", "on a picnic blanket", "at a kitchen table",
            "in a crowded food court", "on a park bench",
        ),
        "indoor",
    ),
    (
        (
            "riding a horse", "leading a horse", "feeding a horse",
        ),
        (
            "along a dirt trail", "across a field", "on a sandy beach", "near a wooden barn",
        ),
        "outdoor",
    ),
    (
        (
            "playing soccer", "kicking a soccer ball", "running after a ball",
        ),
        (
            "on a grass field", "in a dusty schoolyard", "on a muddy pitch", "in a city park",
        ),
        "outdoor",
    ),
)
EVERYDAY_EXTRAS = (
    "on a sunny day", "in the evening", "in the rain", "on a snowy morning", "during sunset", "on a cloudy afternoon",
    "in the early morning", "on a warm summer evening",
    "on a windy day", "under a clear blue sky", "on a foggy morning", "in the late afternoon", "on a hot day",
    "after a rain shower", "on a chilly autumn day", "under gray skies", "at dawn", "on a busy weekend",
    "in bright sunshine", "on a quiet Sunday", "in the spring",
)
# Only for people outdoors.
EVERYDAY_CROWDS = ("while people walk by", "while a crowd watches", "while friends look on", "as tourists pass by")
# Fit indoors and out: times and moments rather than weather.
EVERYDAY_NEUTRAL = (
    "in the evening", "in the morning", "late at night", "on a lazy afternoon", "on a Sunday morning",
    "while music plays", "after dinner", "before breakfast", "on a rainy day", "on a cold winter day",
    "in the early afternoon", "on a holiday weekend", "during a birthday party", "at the end of a long day",
)
EVERYDAY_GROUPS = {
    "farm": ("A herd of", "A group of", "A few"),
    "savanna": ("A herd of", "A group of", "A few"),
    "waterbirds": ("A flock of", "A group of", "A few"),
    "wildlife": ("A pair of", "A few"),
}
FOOD_CONTAINERS = (
    "A white plate", "A paper plate", "A wooden tray", "A lunch box", "A plastic container", "A bento box",
    "A large bowl", "A blue plate", "A cast-iron skillet", "A tray",
)
FOOD_MAINS = (
    "grilled chicken", "pasta", "fried rice", "a cheeseburger", "scrambled eggs", "a slice of pizza", "grilled salmon",
    "a hot dog", "noodles", "a grilled cheese sandwich", "tacos", "a bagel", "pancakes", "sushi rolls", "a steak",
    "meatballs", "a veggie wrap", "a club sandwich",
)
FOOD_SIDES = (
    "steamed broccoli", "french fries", "a side salad", "roasted potatoes", "sliced carrots", "white rice",
    "mashed potatoes", "corn on the cob", "green beans", "sliced tomatoes", "a pickle", "fresh fruit", "coleslaw",
    "a cup of soup", "onion rings", "a boiled egg", "sliced avocado", "cherry tomatoes",
)
FOOD_CONTEXTS = (
    "on a restaurant table", "next to a glass of water", "on a picnic table", "on a kitchen counter",
    "with a fork and knife beside it", "next to a can of soda", "on a checkered tablecloth",
    "on a desk next to a keyboard", "on a tray in a cafeteria", "next to a cup of coffee",
)
ROOMS = {
    "kitchen": (
        "white cabinets", "a stainless steel refrigerator", "a tiled floor", "a gas stove", "a large window",
        "wooden counters", "a double sink", "hanging pots and pans", "a small table", "a microwave above the stove",
    ),
    "bathroom": (
        "a white sink", "a large mirror", "blue tiled walls", "a glass shower", "a bathtub", "a toilet",
        "a towel rack", "a small window", "a wooden cabinet", "a checkered floor",
    ),
    "bedroom": (
        "a large bed", "a wooden dresser", "a ceiling fan", "white curtains", "a reading lamp", "a framed painting",
        "a soft rug", "a nightstand", "a closet door", "a window seat",
    ),
    "living room": (
        "a gray couch", "a flat-screen television", "a fireplace", "a coffee table", "a bookshelf full of books",
        "two armchairs", "a potted plant", "a patterned rug", "large windows", "a floor lamp",
    ),
    "office": (
        "two computer monitors", "a rolling chair", "a cluttered desk", "a whiteboard", "a filing cabinet",
        "a potted plant", "a large window", "a printer", "a bulletin board", "stacks of paper",
    ),
    "classroom": (
        "rows of desks", "a green chalkboard", "a teacher's desk", "colorful posters", "a globe", "a bookshelf",
        "large windows", "a clock on the wall", "a projector screen", "plastic chairs",
    ),
}
ROOM_EXTRAS = (
    "with sunlight streaming in", "with the lights on at night", "seen from the doorway", "seen from a corner",
    "with a cat sitting on the floor", "with a plant in the corner", "with a window open", "on a rainy day",
    "with clothes left on a chair", "with everything neatly arranged", "in the late afternoon light",
    "with a few boxes on the floor",
)
ROOM_ADJECTIVES = (
    "small", "clean", "cluttered", "modern", "old-fashioned", "bright", "narrow", "spacious", "cozy", "dimly lit",
    "tidy", "sunny",
)
TRAIN_COLOURS = ("red", "blue", "yellow", "green", "silver", "white", "black", "orange", "red and white",
                 "blue and yellow", "rusty", "graffiti-covered")
TRAIN_KINDS = ("passenger train", "freight train", "commuter train", "steam train", "subway train",
               "high-speed train", "cargo train", "tram", "local train", "double-decker train")
TRAIN_ACTIONS = (
    "pulling into a station", "stopped at a platform", "traveling along the tracks", "crossing a steel bridge",
    "passing through a small town", "coming out of a tunnel", "moving through a snowy forest", "parked in a rail yard",
    "winding through green hills", "waiting at a crossing", "rolling past a row of houses",
    "crossing a river on a stone viaduct", "speeding past a wheat field", "sitting at an empty platform",
)
PLANE_COLOURS = ("white", "red", "blue", "silver", "yellow", "green", "white and blue", "red and white")
PLANE_KINDS = ("passenger jet", "propeller plane", "airplane", "cargo plane", "biplane", "jumbo jet", "seaplane",
               "private jet", "glider")
PLANE_ACTIONS = (
    "taking off from a runway", "landing at an airport", "flying over a city", "parked at a terminal gate",
    "flying through a cloudy sky", "taxiing on the tarmac", "flying low over the ocean",
    "being refueled on the tarmac", "flying above snowy mountains", "lined up next to another plane",
    "parked inside a hangar", "circling above a lake",
)

# ---------------------------------------------------------------------------------------------------------------
# whoops: scenes that break common sense on purpose.
WHOOPS_CREATURES = (
    ("a polar bear", "cold"),
    ("a penguin", "cold"),
    ("a snowman", "cold"),
    ("a walrus", "cold"),
    ("an arctic fox", "cold"),
    ("a husky", "cold"),
    ("a camel", "hot"),
    ("a lizard", "hot"),
    ("a scorpion", "hot"),
    ("a flamingo", "hot"),
    ("a shark", "water"),
    ("an octopus", "water"),
    ("a goldfish", "water"),
    ("a dolphin", "water"),
    ("a jellyfish", "water"),
    ("a sea turtle", "water"),
    ("a cow", "land"),
    ("a giraffe", "land"),
    ("an elephant", "land"),
    ("a horse", "land"),
    ("a pig", "land"),
    ("a sheep", "land"),
)
WHOOPS_PLACES = {
    "hot": (
        "in the middle of the Sahara desert", "on a sunny tropical beach", "next to an erupting volcano",
        "in a steaming sauna", "on a scorching desert highway", "beside a swimming pool in midsummer",
    ),
    "cold": (
        "on a floating iceberg", "in a snowy arctic tundra", "on top of a frozen mountain", "inside a walk-in freezer",
        "on a frozen lake", "in a blizzard",
    ),
    "water": (
        "at the bottom of the ocean", "in a coral reef", "inside a large fish tank", "in a public swimming pool",
        "deep underwater among kelp",
    ),
    "sky": (
        "floating among the clouds", "high above a city skyline", "in outer space beside the moon",
        "on the wing of a flying airplane",
    ),
    "urban": (
        "on a crowded subway train", "in a public library", "in an office cubicle", "at a supermarket checkout",
        "in a hair salon", "on a city bus", "in a fancy restaurant", "in a hotel elevator",
    ),
}
WHOOPS_CLASHES = {
    "cold": ("hot", "urban", "sky"),
    "hot": ("cold", "water", "sky"),
    "water": ("hot", "sky", "urban", "cold"),
    "land": ("water", "sky", "urban"),
}
WHOOPS_HABITS = (
    "sipping a cup of hot cocoa", "reading a newspaper", "wearing sunglasses", "knitting a scarf", "taking a selfie",
    "playing the violin", "riding a tricycle", "juggling oranges", "wearing a business suit",
    "eating an ice cream cone", "waiting in line", "typing on a laptop", "reading a map", "doing yoga",
    "blowing soap bubbles", "painting a portrait", "holding an umbrella", "drinking a milkshake",
    "wearing a tiny top hat", "listening to headphones",
)
WHOOPS_JOBS = (
    ("driving a taxi", ("through a busy city", "down a crowded avenue", "in heavy traffic")),
    ("teaching a class of children", ("in a school classroom", "in front of a chalkboard")),
    ("cooking pasta", ("in a restaurant kitchen", "at a food truck window")),
    ("performing surgery", ("in a hospital operating room",)),
    ("playing a grand piano", ("in a concert hall", "on a candlelit stage")),
    ("conducting an orchestra", ("in an opera house", "on an outdoor stage")),
    ("reading the evening news", ("in a television studio",)),
    ("piloting a passenger jet", ("in a cockpit above the clouds",)),
    ("directing traffic", ("at a busy intersection", "in the pouring rain")),
    ("cutting a customer's hair", ("in a barber shop", "in a hair salon")),
    ("serving coffee", ("behind a cafe counter", "at a busy diner")),
    ("repairing a car engine", ("in a greasy garage", "on the side of a road")),
    ("giving a lecture", ("in a university hall", "at a science conference")),
    ("delivering the mail", ("on a suburban street", "door to door in the snow")),
    ("painting a self-portrait", ("in an artist's studio", "in a sunny park")),
)
WHOOPS_WORKERS = (
    "a golden retriever", "a raccoon", "a goat", "a penguin", "a brown bear", "a kangaroo", "a tabby cat", "an owl",
    "a frog", "a giraffe", "a pig", "a sloth", "an octopus", "a hamster", "a crocodile", "a chicken", "a koala",
    "a flamingo", "a walrus", "a tortoise",
)
WHOOPS_ATTIRE = (
    "wearing a tiny necktie", "in a crisp white uniform", "wearing reading glasses", "in a tailored blue suit",
    "wearing a name tag", "in a striped apron", "wearing a bow tie", "in a bright orange vest",
)
WHOOPS_HOT_THINGS = (
    "a lit candle", "a roaring campfire", "a burning torch", "a crackling fireplace",
    "a birthday cake with lit candles", "a sizzling barbecue grill", "a burning match", "a glowing oil lamp",
    "a pile of burning logs", "a flaming torch",
)
WHOOPS_UNDERWATER = (
    "burning brightly at the bottom of a swimming pool", "still burning inside a fish tank",
    "blazing underwater among coral", "burning on the seabed next to a shipwreck", "glowing at the bottom of a lake",
    "burning inside a glass of water",
)
WHOOPS_COLD_THINGS = (
    "a snowman", "an ice sculpture of a swan", "a scoop of ice cream", "a block of ice", "a stack of ice cubes",
    "a popsicle", "a frozen waterfall",
)
WHOOPS_HEAT = (
    "sitting unmelted inside a hot oven", "standing on a sizzling frying pan",
    "beside a roaring bonfire without melting", "in a desert at noon, perfectly frozen",
    "next to a glowing radiator, completely solid", "on a stovetop burner, not melting at all",
)
WHOOPS_HEAVY = (
    "an anvil", "a grand piano", "a cast-iron bathtub", "a school bus", "a whale", "a stone statue", "a small house",
    "a locomotive", "a boulder", "a concrete mixer",
)
WHOOPS_FLOAT = (
    "floating like a balloon above a park", "tied to a string and drifting in the sky", "hovering over a calm lake",
    "bobbing on the surface of a pond like a cork", "drifting above the rooftops",
    "held up by a handful of party balloons",
)
WHOOPS_TINY = (
    "a tiny elephant", "a miniature giraffe", "a tiny horse", "a pocket-sized whale", "a tiny rhino",
    "a miniature bear", "a tiny camel", "a tiny hippo",
)
WHOOPS_TINY_SPOTS = (
    "balancing on a teacup", "sleeping in a matchbox", "standing on a fingertip", "riding on a dinner plate",
    "sitting inside a wine glass", "hiding under a mushroom", "drinking from a thimble", "walking across a keyboard",
)
WHOOPS_GIANT = (
    "a giant strawberry", "a huge ladybug", "an enormous snail", "a giant rubber duck", "a gigantic teacup",
    "a colossal pencil", "a giant goldfish", "an enormous pineapple",
)
WHOOPS_GIANT_SPOTS = (
    "towering over a suburban house", "parked in a driveway next to a car", "blocking a highway",
    "floating in a harbor beside ships", "taking up an entire tennis court", "leaning against a skyscraper",
    "sitting in a town square",
)
WHOOPS_OBJECTS = (
    "a bicycle", "a chair", "a house", "an umbrella", "a piano", "a car", "a dress", "a bridge", "a boat", "a sofa",
    "a ladder", "a pair of shoes", "a teapot", "a guitar", "a bed", "a lamp",
)
WHOOPS_MATERIALS = (
    "made of spaghetti", "made of ice", "built from playing cards", "made of chocolate", "knitted from wool",
    "made of soap bubbles", "made of paper", "carved from cheese", "made of jelly", "built from sugar cubes",
    "woven from grass", "made of bread", "made of clouds", "made of balloons",
)
WHOOPS_SETTINGS = (
    "in a sunny park", "on a busy street", "in a modern living room", "by the seaside", "in a museum gallery",
    "in a backyard", "in a heavy rainstorm", "in a furniture store", "on a mountain top", "in a hot sauna",
)
WHOOPS_ERAS = (
    ("a medieval knight in full armor", ("in a stone castle", "on a jousting field")),
    ("a Roman soldier", ("in the Colosseum", "on an ancient road")),
    ("a Viking warrior", ("on a wooden longship", "in a mead hall")),
    ("an ancient Egyptian pharaoh", ("beside a pyramid", "on a golden throne")),
    ("a caveman", ("inside a cave", "beside a campfire")),
    ("a Victorian lady in a long dress", ("in a Victorian parlor", "in a horse-drawn carriage")),
    ("a samurai", ("in a bamboo forest", "in a feudal castle")),
    ("a pirate captain", ("on the deck of a pirate ship", "on a treasure island")),
    ("a cowboy from the Wild West", ("in a dusty saloon", "on a desert ranch")),
    ("a Greek philosopher in a toga", ("in an ancient temple", "in a marble courtyard")),
)
WHOOPS_GADGETS = (
    "taking a selfie with a smartphone", "riding an electric scooter", "typing on a laptop",
    "heating lunch in a microwave", "wearing virtual reality goggles", "listening to wireless earbuds",
    "charging an electric car", "playing a handheld video game", "using a vacuum cleaner", "flying a camera drone",
    "paying with a credit card", "video calling on a tablet",
)
WHOOPS_PREY = (
    ("a mouse", "cat"),
    ("a rabbit", "fox"),
    ("a sheep", "wolf"),
    ("a fly", "frog"),
    ("a worm", "bird"),
    ("a chicken", "fox"),
    ("a gazelle", "lion"),
    ("a fish", "bear"),
    ("a zebra", "crocodile"),
    ("a cricket", "lizard"),
)
WHOOPS_REVERSALS = (
    "chasing a terrified {p}", "walking a {p} on a leash", "scolding a guilty-looking {p}",
    "carrying a sleeping {p} in its arms", "giving a {p} a bath", "hunting a frightened {p}", "tucking a {p} into bed",
    "feeding a {p} with a spoon",
)
WHOOPS_REVERSAL_PLACES = (
    "on a kitchen floor", "in a sunny meadow", "in a cozy living room", "beside a forest path", "on a city sidewalk",
    "in a barn", "beside a river", "in a backyard", "on a sandy beach", "in a school playground",
)
WHOOPS_PEOPLE = (
    ("a man", "his"),
    ("a woman", "her"),
    ("a chef", "his"),
    ("an old man", "his"),
    ("a young girl", "her"),
    ("a businessman", "his"),
    ("a grandmother", "her"),
    ("a teenager", "her"),
    ("a police officer", "his"),
    ("a bride", "her"),
    ("a little boy", "his"),
    ("a nurse", "her"),
)
WHOOPS_TASKS = (
    "eating soup", "chopping onions", "brushing {pos} teeth", "painting a fence", "combing {pos} hair",
    "sweeping the floor", "cutting a birthday cake", "writing a letter", "watering plants", "hammering a nail",
    "stirring coffee", "mowing the lawn", "ironing a shirt", "brushing a horse",
)
WHOOPS_WRONG_TOOLS = (
    "a banana", "a tennis racket", "a rubber chicken", "a baguette", "a feather", "a carrot", "a hairdryer",
    "a violin bow", "a shoe", "a fish", "a toy sword", "a lollipop", "a garden hose", "a celery stick",
)
WHOOPS_WITNESSES = (
    "as onlookers stare in disbelief", "while nobody seems to notice", "as a puzzled child points at it",
    "while a dog barks at it", "as passersby walk on without looking", "while a news crew films the scene",
    "as a cat watches suspiciously", "while tourists take photos", "as if it were completely normal",
    "while an old man shrugs", "as a crowd gathers around", "while a police officer takes notes",
    "while a toddler claps happily", "as two pigeons look on", "while a jogger stops to stare",
    "as a family takes a selfie nearby", "while a scientist measures it", "as a mail carrier walks past",
    "while birds circle overhead", "as a waiter drops his tray", "while children laugh", "as a parrot squawks",
    "while a painter sketches the scene", "as a bus full of people slows down",
)
WHOOPS_SHOTS = (
    "in a realistic photo", "on a bright sunny day", "at dusk", "in a documentary-style photograph",
    "under a cloudy sky", "in broad daylight", "captured on a phone camera", "in a grainy security camera still",
    "in a wide-angle shot", "in a sharp close-up", "on a foggy morning", "in a vintage postcard photo",
    "at midnight", "in a glossy magazine photo", "in soft evening light", "on a snowy afternoon",
    "in a dramatic low-angle shot", "in a slow-motion photo", "in a candid snapshot", "in a tourist's photo",
)
WHOOPS_MOODS = ("grumpy", "cheerful", "sleepy", "sunburned", "confused", "elegant", "chubby", "bored", "proud",
                "nervous", "serious", "tiny", "determined", "relaxed", "scruffy", "dignified")

# ---------------------------------------------------------------------------------------------------------------
# art: DiffusionDB-style prompts, a subject followed by comma-separated modifiers (no artist names).
ART_BEINGS = (
    "a lone astronaut", "an old fisherman", "a tiny dragon", "a mechanical owl", "a fox spirit", "a wandering knight",
    "a girl with a red umbrella", "a giant whale", "a stag with glowing antlers", "a robot gardener", "a young witch",
    "a lighthouse keeper", "a crystal deer", "a sleeping giant", "a white tiger", "a samurai", "a violinist",
    "a glowing jellyfish", "a desert nomad", "a clockwork butterfly", "a cat wearing a crown", "an elderly wizard",
    "a koi fish", "a snow leopard", "a masked dancer", "a phoenix", "a little robot", "a beekeeper",
    "a moth with golden wings",
)
ART_BEING_ACTIONS = (
    "standing", "resting", "wandering", "drifting", "waiting", "reading a book", "playing a flute",
    "gazing at the stars", "walking slowly", "sleeping", "dancing", "praying", "hiding",
    "looking back over its shoulder",
)
ART_THINGS = (
    "a cozy cabin", "a floating castle", "an ancient tree", "a steam locomotive", "a hot air balloon", "a paper boat",
    "a clockwork city", "a ruined temple", "a lighthouse", "a greenhouse full of orchids", "a tiny village",
    "a sunken ship", "a spiral staircase", "a crystal palace", "a red telephone box", "a treehouse", "a windmill",
    "a stone bridge", "a bookshop", "a glass teapot", "an abandoned carousel", "a giant pocket watch", "a vintage car",
    "a ramen stall",
)
ART_SETTINGS = (
    "in a misty forest", "on a floating island", "in a neon-lit alley", "beneath a starry sky",
    "in an overgrown cathedral", "on a frozen lake", "at the edge of a cliff", "among giant mushrooms",
    "in a flooded city", "on a quiet rooftop", "in a field of sunflowers", "under the northern lights",
    "in a desert of white sand", "beside a waterfall", "inside a crumbling library", "on the surface of the moon",
    "in a bamboo grove", "in a snow-covered village", "in an underwater palace", "above a sea of clouds",
    "in a lantern-lit market", "in a lavender field", "on a rainy city street", "in a candlelit attic",
    "on a volcanic shore", "in a cherry blossom garden",
)
ART_TIMES = (
    "at dawn", "at dusk", "at midnight", "during a thunderstorm", "in heavy fog", "in autumn", "in falling snow",
    "at golden hour", "under a blood red moon", "after the rain",
)
ART_MEDIA = (
    "oil painting", "watercolor painting", "digital painting", "concept art", "charcoal sketch", "3d render",
    "matte painting", "ink illustration", "gouache painting", "pastel drawing", "low poly render",
    "isometric illustration", "pixel art", "stained glass", "linocut print", "35mm photograph", "pencil drawing",
    "acrylic on canvas", "claymation still", "paper cut-out art", "woodblock print", "art nouveau poster",
    "vector illustration", "cinematic film still", "tilt-shift photograph", "impasto painting", "unreal engine render",
    "tempera on wood",
)
ART_LIGHTING = (
    "golden hour lighting", "volumetric lighting", "dramatic rim lighting", "soft diffused light",
    "cinematic lighting", "moody backlight", "bioluminescent glow", "neon lighting", "candlelight", "god rays",
    "studio lighting", "pale moonlight", "harsh midday sun", "soft window light", "glowing embers", "dappled sunlight",
    "chiaroscuro", "warm lantern light",
)
ART_DETAIL = (
    "highly detailed", "intricate details", "ultra detailed", "sharp focus", "8k", "4k resolution", "high resolution",
    "fine brushwork", "hyperrealistic", "crisp textures", "masterpiece", "award-winning", "photorealistic",
    "delicate linework", "rich textures", "octane render",
)
ART_PALETTE = (
    "muted earth tones", "vibrant colors", "pastel palette", "teal and orange", "monochrome", "warm color palette",
    "cool blue tones", "rich jewel tones", "black and gold", "desaturated colors", "sepia tones",
    "soft pink and lavender", "emerald and copper", "limited palette",
)
ART_COMPOSITION = (
    "wide angle", "close-up portrait", "symmetrical composition", "aerial view", "rule of thirds", "panoramic view",
    "low angle shot", "extreme close-up", "centered composition", "bird's eye view", "shallow depth of field", "bokeh",
    "full body shot", "dutch angle",
)
ART_MOOD = (
    "serene", "ethereal", "melancholic", "epic", "whimsical", "dreamlike atmosphere", "mysterious", "cozy atmosphere",
    "eerie", "peaceful", "nostalgic", "majestic", "surreal", "storybook feel",
)
ART_LEADS = (
    "", "", "", "a painting of ", "an illustration of ", "a beautiful render of ", "portrait of ", "a photo of ",
    "a detailed drawing of ",
)

# ---------------------------------------------------------------------------------------------------------------
# paragraph: Localized-Narratives-style descriptions, told region by region.
PARA_PEOPLE = (
    ("a man", "he"),
    ("a woman", "she"),
    ("an old man", "he"),
    ("an old woman", "she"),
    ("a young man", "he"),
    ("a young woman", "she"),
    ("a boy", "he"),
    ("a girl", "she"),
    ("a person", "the person"),
    ("a little girl", "she"),
    ("a little boy", "he"),
    ("a lady", "she"),
)
PARA_HAIR = (
    "short black hair", "long brown hair", "curly hair", "a beard", "blond hair tied back", "gray hair", "a ponytail",
    "spectacles", "a cap on the head", "a wrist watch",
)
PARA_BEARDED = ("a man", "an old man", "a young man")  # who may have "a beard"
PARA_TOPS = ("shirt", "jacket", "t-shirt", "sweater", "coat", "dress", "hoodie", "top")
PARA_OTHER_CLOTHES = ("scarf", "cap", "shorts", "jeans", "skirt", "shoes", "hat", "trousers")
PARA_PLURAL_CLOTHES = ("shorts", "jeans", "shoes", "trousers")
PARA_COLOURS = (
    "black", "white", "blue", "red", "green", "yellow", "gray", "brown", "pink", "orange", "purple", "cream",
)
PARA_SCENES = {
    "street": {
        "taken": "outdoors",
        "places": ("on the road", "on the footpath", "near the shops", "beside a pole", "on the zebra crossing"),
        "actions": (
            "walking", "riding a bicycle", "standing", "crossing the road", "holding an umbrella",
            "carrying a backpack", "talking on a mobile phone", "pushing a cart",
        ),
        "side": (
            "a parked car", "a traffic signal", "a street light", "a green dustbin", "a sign board", "a bus stop",
            "a motorbike", "a tree", "a red post box", "a wooden bench",
        ),
        "background": (
            "buildings with glass windows", "trees", "a few vehicles on the road", "shops with name boards",
            "people walking", "poles with wires", "a bridge", "hoardings", "street lights",
        ),
        "top": ("the sky with clouds", "a clear blue sky", "the cloudy sky", "some wires"),
        "bottom": ("the road", "a zebra crossing", "the footpath", "some dry leaves", "a manhole cover"),
        "held": ("a bag", "a mobile phone", "an umbrella", "a coffee cup", "a newspaper"),
    },
    "park": {
        "taken": "outdoors",
        "places": ("in a park", "on the grass", "near a bench", "on a walking path", "under a tree"),
        "actions": (
            "sitting on a bench", "walking a dog", "playing with a ball", "reading a book", "jogging", "flying a kite",
            "standing", "feeding birds",
        ),
        "side": (
            "a wooden bench", "a dustbin", "a lamp post", "a small fountain", "a bicycle", "a dog", "a swing",
            "a slide", "a flower bed", "a picnic table",
        ),
        "background": (
            "trees", "plants", "bushes", "a fence", "people sitting on the grass", "a pond", "a few buildings",
            "hills", "a playground",
        ),
        "top": ("the sky", "the sky with clouds", "branches of a tree", "the blue sky"),
        "bottom": ("the grass", "a path", "fallen leaves", "small stones", "the ground"),
        "held": ("a leash", "a ball", "a book", "a water bottle", "a kite string"),
    },
    "beach": {
        "taken": "outdoors",
        "places": ("on the beach", "on the sand", "near the water", "on the seashore"),
        "actions": (
            "walking", "standing", "building a sand castle", "holding a surfboard", "running", "sitting on a towel",
            "collecting shells", "looking at the sea",
        ),
        "side": (
            "an umbrella", "a beach chair", "a surfboard", "a boat", "a lifeguard tower", "a bucket", "a rock",
            "a palm tree", "a towel", "a sand castle",
        ),
        "background": (
            "the sea", "waves", "hills", "a few people", "boats on the water", "trees", "a lighthouse", "rocks",
            "buildings",
        ),
        "top": ("the sky with clouds", "the sun", "a clear sky", "birds flying in the sky"),
        "bottom": ("the sand", "footprints on the sand", "water", "shells", "small stones"),
        "held": ("a surfboard", "a bucket", "a hat", "a camera", "a shell"),
    },
    "kitchen": {
        "taken": "indoors",
        "places": ("in the kitchen", "near the counter", "in front of the stove", "beside a table"),
        "actions": (
            "cooking", "cutting vegetables", "washing dishes", "standing", "mixing something in a bowl",
            "holding a plate", "smiling", "pouring water",
        ),
        "side": (
            "a refrigerator", "a sink", "a microwave oven", "a shelf with jars", "a window", "a gas stove", "a table",
            "a chair", "a plant pot", "a kettle",
        ),
        "background": (
            "cupboards", "a wall", "utensils", "bottles", "a few containers", "tiles on the wall", "lights",
            "a cabinet", "a clock",
        ),
        "top": ("the ceiling", "lights", "the ceiling with lights", "a chimney hood"),
        "bottom": ("the floor", "a mat", "a table with food items", "a counter top"),
        "held": ("a knife", "a spoon", "a bowl", "a plate", "a pan"),
    },
    "living room": {
        "taken": "indoors",
        "places": ("on a sofa", "in a room", "near a window", "on the floor", "beside a table"),
        "actions": (
            "sitting", "reading a book", "watching television", "playing with a cat", "lying", "holding a remote",
            "using a laptop", "talking to someone",
        ),
        "side": (
            "a lamp", "a table", "a chair", "a flower vase", "a plant", "a cupboard", "a television", "a bookshelf",
            "a cat", "a pillow",
        ),
        "background": (
            "a wall", "photo frames", "curtains", "a window", "a door", "books in a rack", "a mirror", "a wall clock",
            "paintings",
        ),
        "top": ("the ceiling", "lights", "a ceiling fan", "a chandelier"),
        "bottom": ("the floor", "a carpet", "a mat", "a few toys", "a table"),
        "held": ("a book", "a cup", "a remote", "a phone", "a pen"),
    },
    "market": {
        "taken": "outdoors",
        "places": ("in a market", "near a stall", "beside the vegetables", "in front of a shop"),
        "actions": (
            "standing", "selling fruits", "buying vegetables", "carrying a basket", "walking", "talking to a vendor",
            "weighing something", "arranging fruits",
        ),
        "side": (
            "a cart", "a stall", "a basket of tomatoes", "a weighing machine", "boxes", "a tent", "a crate of apples",
            "a sack", "a table", "an umbrella",
        ),
        "background": (
            "people", "stalls", "tents", "shops", "buildings", "banners", "vehicles", "boards with text", "trees",
        ),
        "top": ("the sky", "a tent", "the sky with clouds", "a roof"),
        "bottom": ("the ground", "the road", "a mat", "some vegetables", "a few bags"),
        "held": ("a basket", "a bag", "a banana", "some coins", "a cabbage"),
    },
    "farm": {
        "taken": "outdoors",
        "places": ("in a field", "near a farm", "on the grass", "beside a fence"),
        "actions": (
            "standing", "feeding a cow", "walking", "holding a bucket", "driving a tractor", "carrying hay", "working",
            "sitting on a fence",
        ),
        "side": (
            "a cow", "a tractor", "a wooden fence", "a horse", "a haystack", "a barn", "a goat", "a water tank",
            "a wheel barrow", "a dog",
        ),
        "background": (
            "trees", "hills", "a farm house", "fields", "animals", "a shed", "a windmill", "mountains", "poles",
        ),
        "top": ("the sky", "the sky with clouds", "a blue sky", "birds"),
        "bottom": ("the grass", "the mud", "the ground", "hay", "plants"),
        "held": ("a bucket", "a stick", "a rope", "a pitchfork", "a basket"),
    },
    "mountain": {
        "taken": "outdoors",
        "places": ("on a hill", "on a rock", "on a trail", "near a lake"),
        "actions": (
            "hiking", "standing", "sitting on a rock", "carrying a backpack", "taking a photo", "walking", "resting",
            "climbing",
        ),
        "side": (
            "a tent", "a rock", "a tree", "a backpack", "a signboard", "a stream", "a bridge", "a horse", "a log",
            "a camp fire",
        ),
        "background": (
            "mountains", "trees", "snow", "a lake", "clouds", "hills", "a waterfall", "rocks", "a small house",
        ),
        "top": ("the sky", "the sky with clouds", "the sun", "a cloudy sky"),
        "bottom": ("rocks", "the grass", "the path", "small plants", "the snow"),
        "held": ("a stick", "a camera", "a water bottle", "a map", "a rope"),
    },
    "cafe": {
        "taken": "indoors",
        "places": ("in a cafe", "at a table", "near the counter", "beside a window"),
        "actions": (
            "sitting", "drinking coffee", "eating", "using a laptop", "talking to a friend", "reading", "standing",
            "serving food",
        ),
        "side": (
            "a table", "a chair", "a cup", "a plant", "a menu board", "a counter", "a glass", "a lamp",
            "a plate with cake", "a coffee machine",
        ),
        "background": (
            "people", "tables", "chairs", "a wall", "photo frames", "lights", "a door", "glass windows", "shelves",
        ),
        "top": ("the ceiling", "lights", "hanging lamps", "a roof"),
        "bottom": ("the floor", "a table", "a cup and saucer", "a tray", "tiles"),
        "held": ("a cup", "a spoon", "a phone", "a menu", "a glass"),
    },
    "harbor": {
        "taken": "outdoors",
        "places": ("on a boat", "on the dock", "near the water", "on a bridge"),
        "actions": (
            "standing", "fishing", "walking", "tying a rope", "sitting", "looking at the water", "rowing", "waving",
        ),
        "side": (
            "a boat", "a pole", "a rope", "a net", "a wooden dock", "a crane", "a ship", "a bird", "a railing",
            "barrels",
        ),
        "background": (
            "ships", "water", "buildings", "hills", "a bridge", "boats", "containers", "trees", "a light house",
        ),
        "top": ("the sky", "the sky with clouds", "birds flying", "a cloudy sky"),
        "bottom": ("water", "the dock", "wooden planks", "ropes", "the floor"),
        "held": ("a fishing rod", "a rope", "a net", "a paddle", "a bag"),
    },
    "classroom": {
        "taken": "indoors",
        "places": ("in a classroom", "near a board", "at a desk", "beside a window"),
        "actions": (
            "standing", "writing on the board", "sitting", "reading", "teaching", "raising a hand", "talking",
            "holding a book",
        ),
        "side": (
            "a board", "a desk", "a chair", "a bag", "a globe", "a window", "a door", "a cupboard", "a dustbin",
            "books",
        ),
        "background": (
            "students", "benches", "a wall", "charts", "a board", "windows", "a clock", "a notice board", "lights",
        ),
        "top": ("the ceiling", "lights", "a fan", "tube lights"),
        "bottom": ("the floor", "a table", "books", "a bag", "tiles"),
        "held": ("a book", "a marker", "a pen", "a notebook", "a paper"),
    },
}
PARA_OPENERS = (
    "In this image we can see {s} {a} {p}.", "In this picture I can see {s} {a} {p}.", "This image shows {s} {a} {p}.",
    "Here we can see {s} who is {a} {p}.", "In the center of the image there is {s} {a} {p}.",
    "In the middle of the picture, {s} is {a} {p}.", "This picture is taken {t}. We can see {s} {a} {p}.",
    "We can see {s} {a} {p} in this image.", "In the front of the image {s} is {a} {p}.",
    "In this image, {s} is {a} {p}.",
)
PARA_PERSON = (
    "{P} is wearing {c1} and {c2}.", "{P} is holding {h}.", "{P} has {hair}.", "{P} is wearing {c1}.",
    "{P} has {hair} and is holding {h}.", "{P} wore {c1} and {c2}.",
)
PARA_SIDE = (
    "On the {side} side of the image there {be} {x}.", "To the {side} we can see {x} and {y}.",
    "On the {side} side we can see {x}.", "On the {side} there {be} {x}.",
    "Towards the {side} side of the picture there {be} {x}.", "At the {side} corner we can see {x} and {y}.",
    "On the {side} we can see {x}, {y} and {z}.", "Beside {o} on the {side} there {be} {x}.",
)
PARA_BACK = (
    "In the background we can see {x}, {y} and {z}.", "In the background there are {x} and {y}.",
    "Behind {o} we can see {x} and {y}.", "At the back of the image there are {x}, {y} and {z}.",
    "In the background of the image, {x} and {y} are visible.", "We can also see {x} and {y} in the back.",
)
PARA_TOP = (
    "At the top of the image we can see {x}.", "At the top there {be} {x}.", "We can also see {x} at the top.",
    "In the top right corner there {be} {x}.", "At the top of the picture, {x} {be} visible.",
)
PARA_BOTTOM = (
    "At the bottom of the image we can see {x}.", "At the bottom there {be} {x}.", "In the foreground we can see {x}.",
    "At the bottom of the picture, {x} {be} visible.", "Below that we can see {x}.",
)
# fmt: on
