# Récapitulatif quotidien (mode digest), opportunités classées par score (toutes
# les notifications : mises en relation, adhésions, besoins sans réponse...,
# comme la page « Mes opportunités » qu'ouvre {{link}}).
# Noms : staff_name, why, link, count ("3"), opportunities ("3 opportunités"),
# date, items_text, items_html (listes déjà préparées : à écrire {{{items_text}}}, {{{items_html}}}).
# Pour chaque opportunité ([item_text], [item_html]) : item_title,
# item_summary, item_score ("61 %", vide sans score), item_score_note
# (" (score 61 %)", vide sans score), item_link
[subject]
Maillage : votre récapitulatif du {{date}} ({{opportunities}})
[text]
Bonjour {{staff_name}},

Votre récapitulatif du {{date}} ({{opportunities}}), par ordre de pertinence :

{{{items_text}}}

Toutes vos opportunités : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p>Votre récapitulatif du {{date}} (<strong>{{opportunities}}</strong>), par ordre de pertinence :</p>
<ol>
{{{items_html}}}
</ol>
<p><a href="{{link}}">Toutes vos opportunités</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
[item_text]
- {{item_title}}{{item_score_note}}
  {{item_summary}}
  {{item_link}}
[item_html]
<li><a href="{{item_link}}">{{item_title}}</a>{{item_score_note}}<br>{{item_summary}}</li>
