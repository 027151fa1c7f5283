# Récapitulatif quotidien (mode digest), notifications classées par score.
# Noms : staff_name, why, link, count ("3"), notifications ("3 notifications"),
# opportunities ("3 opportunités"),
# date, items_text, items_html (listes déjà préparées : à écrire {{{items_text}}}, {{{items_html}}}).
# Pour chaque notification ([item_text], [item_html]) : item_title,
# item_summary, item_score ("61 %", vide sans score), item_score_note
# (" (score 61 %)", vide sans score), item_link
[subject]
Maillage : votre récapitulatif du {{date}} ({{notifications}})
[text]
Bonjour {{staff_name}},

Votre récapitulatif du {{date}} ({{notifications}}), les plus pertinentes d'abord :

{{{items_text}}}

Toutes vos notifications : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p>Votre récapitulatif du {{date}} (<strong>{{notifications}}</strong>), les plus pertinentes d'abord :</p>
<ol>
{{{items_html}}}
</ol>
<p><a href="{{link}}">Toutes vos notifications</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
[item_text]
* {{item_title}}{{item_score_note}}
  {{item_summary}}
  {{item_link}}
[item_html]
<li><a href="{{item_link}}">{{item_title}}</a>{{item_score_note}}<br>{{item_summary}}</li>
