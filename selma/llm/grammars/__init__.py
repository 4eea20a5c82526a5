"""The offline template grammars, one module per skill family; `template_backend.GRAMMARS` names them.

Each grammar is a function `(rng, word_limit) -> (prompt, scene)` that fills several independent slots (objects,
attributes, places, relations, modifiers) inside one of several sentence patterns, and records in the scene
(`scene.Scene`) what the prompt says, in its own words, for exact DSG questions; only `paragraph`
uses the word limit to decide how much to say, the others are short and are redrawn if too long. Many
independent slots matter more than big vocabularies: SELMA's ROUGE-L filter rejects a prompt whose
longest common subsequence with any kept prompt covers more than 80% of its words, so two prompts must
differ in more than one short slot to both survive. The words live in `selma/llm/vocab/*.json`, read
through `selma.llm.template_vocab.vocab()`; `english` holds the plural/article helpers they share.
"""
