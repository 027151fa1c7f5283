# Besoin collectif, opportunité de mutualisation (collective_need.detected).
# Noms : staff_name, why, link, category, territory_name, of_territory ("de la
# CU Caen la Mer"; "à moins de 20 km du Havre" pour un groupe par distance;
# "du Calvados"),
# at_territory ("à la CU Caen la Mer", "autour du Havre", "dans le Calvados",
# "en Seine-Maritime"), department, count, structures, explanation (the
# matcher's sentence, which says the first line again), revision
[subject]
Opportunité de mutualisation : {{category}} {{at_territory}} ({{count}} structures)
[text]
Bonjour {{staff_name}},

{{count}} structures {{of_territory}} expriment le même besoin : {{category}}.
Structures : {{structures}}

Une réponse mutualisée est peut-être à construire : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p><strong>{{count}} structures</strong> {{of_territory}} expriment le même besoin : <strong>{{category}}</strong>.</p>
<p>Structures : {{structures}}</p>
<p><a href="{{link}}">Construire une réponse mutualisée</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
