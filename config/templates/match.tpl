# Mise en relation proposée (match.found).
# Noms : staff_name, why, link, need_title, need_structure, need_commune,
# offer_title, offer_structure, offer_commune, category, department, score
# ("72 %"), distance ("à 4 km", "à moins d'un km" or "dans la même
# commune", as the explanation says it), distance_km ("3,6"), rank, explanation
[subject]
Mise en relation proposée : {{need_title}} — {{category}}
[text]
Bonjour {{staff_name}},

Maillage propose une mise en relation — {{category}}, {{department}} :

- Besoin : {{need_title}}, exprimé par {{need_structure}} ({{need_commune}})
- Offre : {{offer_title}}, proposée par {{offer_structure}} ({{offer_commune}})
- Score : {{score}}, {{distance}}, rang {{rank}} parmi les offres proposées pour ce besoin à ce jour

Pourquoi : {{explanation}}

Pour mettre les structures en relation, ou signaler que ce n'est pas pertinent :
{{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p>Maillage propose une <strong>mise en relation</strong> — {{category}}, {{department}} :</p>
<ul>
<li><strong>Besoin</strong> : {{need_title}}, exprimé par {{need_structure}} ({{need_commune}})</li>
<li><strong>Offre</strong> : {{offer_title}}, proposée par {{offer_structure}} ({{offer_commune}})</li>
<li><strong>Score</strong> : {{score}}, {{distance}}, rang {{rank}} parmi les offres proposées pour ce besoin à ce jour</li>
</ul>
<p>Pourquoi : {{explanation}}</p>
<p><a href="{{link}}">Mettre en relation ou signaler « pas pertinent »</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
