# Récapitulatif quotidien (mode digest), opportunités classées par score.
# Noms : staff_name, why, link, count, date, items_text, items_html (HTML
# déjà préparé : à écrire {{{items_html}}}).
# Pour chaque opportunité ([item_text], [item_html]) : item_title,
# item_summary, item_score, item_link
[subject]
Maillage : {{count}} opportunité(s) du {{date}}
[text]
Bonjour {{staff_name}},

Voici les {{count}} opportunité(s) de coopération du {{date}}, de la plus pertinente à la moins pertinente :

{{items_text}}

Toutes vos notifications : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p>Voici les <strong>{{count}} opportunité(s)</strong> de coopération du {{date}}, de la plus pertinente à la moins pertinente :</p>
<ol>
{{{items_html}}}
</ol>
<p><a href="{{link}}">Toutes vos notifications</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
[item_text]
* {{item_title}} (score {{item_score}})
  {{item_summary}}
  {{item_link}}
[item_html]
<li><a href="{{item_link}}">{{item_title}}</a> (score {{item_score}})<br>{{item_summary}}</li>
