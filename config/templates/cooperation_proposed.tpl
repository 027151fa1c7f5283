# Proposition de coopération (cooperation.proposed).
# Noms : staff_name, why, link, from_structure, to_whom ("Les Éditions du
# Marais", "toute structure du Calvados"), addressed_to ("aux Éditions du
# Marais", "à toute structure du Calvados"), cooperation_kind,
# title, description, category, department
[subject]
Proposition de coopération : {{title}}
[text]
Bonjour {{staff_name}},

{{from_structure}} propose une coopération ({{cooperation_kind}}) {{addressed_to}} :

{{title}}
{{description}}

Catégorie : {{category}} ; département : {{department}}.
Suivre la proposition : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p><strong>{{from_structure}}</strong> propose une coopération ({{cooperation_kind}}) {{addressed_to}} :</p>
<p><strong>{{title}}</strong></p>
<p>{{description}}</p>
<p>Catégorie : {{category}} ; département : {{department}}.</p>
<p><a href="{{link}}">Suivre la proposition</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
